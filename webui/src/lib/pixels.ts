// Turning a drawing (RGBA pixels) into a model input: grey levels in [0, 1], averaged down to the model's
// height x width, shaped as the model's input shape (e.g. [1, 8, 8] -> one channel of 8 rows of 8).

export function toGrey(rgba: ArrayLike<number>, width: number, height: number): Float32Array {
  const grey = new Float32Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2], a = rgba[4 * i + 3] / 255;
    grey[i] = ((0.299 * r + 0.587 * g + 0.114 * b) / 255) * a;
  }
  return grey;
}

/** Box-average `grey` (width x height) down to outW x outH. */
export function downsample(grey: Float32Array, width: number, height: number, outW: number, outH: number): number[][] {
  if (outW < 1 || outH < 1 || outW > width || outH > height) throw new RangeError(`cannot downsample to ${outW}x${outH}`);
  const rows: number[][] = [];
  for (let y = 0; y < outH; y++) {
    const row: number[] = [];
    const y0 = Math.floor((y * height) / outH), y1 = Math.floor(((y + 1) * height) / outH);
    for (let x = 0; x < outW; x++) {
      const x0 = Math.floor((x * width) / outW), x1 = Math.floor(((x + 1) * width) / outW);
      let total = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) total += grey[yy * width + xx];
      row.push(Math.round((total / ((y1 - y0) * (x1 - x0))) * 1000) / 1000);
    }
    rows.push(row);
  }
  return rows;
}

/** The instance for an input shape: [H, W], [C, H, W] (the grey plane repeated) or [H*W] flattened. */
export function toInstance(plane: number[][], shape: readonly number[]): unknown {
  if (shape.length === 2) return plane;
  if (shape.length === 3) return Array.from({ length: shape[0] }, () => plane);
  if (shape.length === 1) return plane.flat();
  throw new RangeError(`an image cannot fill an input of shape [${shape.join(", ")}]`);
}

/** Height and width an image must be brought to for `shape`. */
export function imageSize(shape: readonly number[]): { h: number; w: number } {
  if (shape.length === 2) return { h: shape[0], w: shape[1] };
  if (shape.length === 3) return { h: shape[1], w: shape[2] };
  if (shape.length === 1) {
    const side = Math.round(Math.sqrt(shape[0]));
    if (side * side === shape[0]) return { h: side, w: side };
  }
  throw new RangeError(`an image cannot fill an input of shape [${shape.join(", ")}]`);
}
