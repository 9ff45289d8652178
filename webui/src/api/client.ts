// The typed REST client: openapi-fetch over the generated `paths`, the bearer token added to every call,
// and every failure turned into an ApiError carrying the API's envelope {"error": code, "detail": text}.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Role = Schemas["UserRole"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(detail);
    this.name = "ApiError";
  }
}

/** An ApiError from any error body: the API's envelope when it is one, the HTTP status otherwise. */
export function toApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object" && "error" in body && "detail" in body) {
    const envelope = body as { error: unknown; detail: unknown };
    return new ApiError(status, String(envelope.error), String(envelope.detail));
  }
  return new ApiError(status, status === 0 ? "network" : "http_" + status, `the server answered ${status}`);
}

let token: string | null = null;
let onUnauthorized: () => void = () => {};

export function setToken(value: string | null): void {
  token = value;
}
export function getToken(): string | null {
  return token;
}
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const origin = typeof window !== "undefined" ? window.location.origin : "http://localhost";
export const api = createClient<paths>({ baseUrl: origin });
api.use({
  onRequest({ request }) {
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
});

/** The data of an openapi-fetch result, or throw its error as an ApiError (401 also logs out). */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (error) {
    throw new ApiError(0, "network", `the server could not be reached (${String(error)})`);
  }
  if (!result.response.ok) {
    if (result.response.status === 401 && token) onUnauthorized();
    throw toApiError(result.response.status, result.error);
  }
  return result.data as T;
}
