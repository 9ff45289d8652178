import { describe, expect, it } from "vitest";
import { downsample, imageSize, toGrey, toInstance } from "./pixels";

describe("pixels", () => {
  it("averages a white quadrant down to one bright cell", () => {
    const width = 4, height = 4;
    const rgba = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) rgba.set([255, 255, 255, 255], (y * width + x) * 4);
    const grey = toGrey(rgba, width, height);
    expect(downsample(grey, width, height, 2, 2)).toEqual([[1, 0], [0, 0]]);
  });
  it("shapes an instance for [C, H, W], [H, W] and flat inputs", () => {
    const plane = [[0.5, 1], [0, 0.25]];
    expect(toInstance(plane, [1, 2, 2])).toEqual([plane]);
    expect(toInstance(plane, [2, 2])).toBe(plane);
    expect(toInstance(plane, [4])).toEqual([0.5, 1, 0, 0.25]);
    expect(() => toInstance(plane, [1, 1, 2, 2])).toThrow(RangeError);
    expect(imageSize([1, 8, 8])).toEqual({ h: 8, w: 8 });
    expect(imageSize([64])).toEqual({ h: 8, w: 8 });
    expect(() => imageSize([10])).toThrow(RangeError);
  });
});
