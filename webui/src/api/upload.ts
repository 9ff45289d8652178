// Multipart uploads with progress: fetch cannot report upload progress, XMLHttpRequest can.
import { ApiError, authHeaders, toApiError } from "./client";

export interface UploadProgress {
  loaded: number;
  total: number;
}

export function upload<T>(path: string, form: FormData, onProgress: (p: UploadProgress) => void,
                          signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress({ loaded: event.loaded, total: event.total });
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else reject(toApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload failed: the server could not be reached"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "the upload was cancelled"));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(form);
  });
}
