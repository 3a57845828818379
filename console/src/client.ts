// The API client: openapi-fetch over the types openapi-typescript generates
// from ../openapi.json (src/api.d.ts). The credential lives in
// sessionStorage only and goes out as `Authorization: Bearer`, never in a
// URL or a cookie.

import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./api";

export type Schemas = components["schemas"];
export type Runner = Schemas["JsonRunner"];
export type RunnerStatus = Schemas["RunnerStatus"];
export type Job = Schemas["JsonJob"];
export type JobStatus = Schemas["JobStatus"];
export type Spec = Schemas["JsonSpec"];
export type Project = Schemas["JsonProject"];
export type Report = Schemas["JsonReport"];

const KEY = "runners.console.credential";

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}

/** Called when the API answers 401 to a signed-in request. */
let onUnauthorized: (message: string) => void = () => {};
export function setUnauthorizedHandler(fn: (message: string) => void): void {
  onUnauthorized = fn;
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  async onResponse({ response }) {
    if (response.status === 401 && getToken()) {
      onUnauthorized(await errorMessage(response.clone()));
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use(auth);

/** The headers every hand-made request sends (for endpoints not in the spec yet, and the event stream). */
export function authHeaders(extra: Record<string, string> = {}): Headers {
  const headers = new Headers(extra);
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return headers;
}

/** The API's own words for an error response (`message` of its JSON body), or the status line. */
export async function errorMessage(response: Response): Promise<string> {
  try {
    const body: unknown = await response.json();
    if (body && typeof body === "object" && "message" in body && typeof body.message === "string") {
      return body.message;
    }
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText || "error"}`.trim();
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Unwraps an openapi-fetch result: the data, or an ApiError with the API's message. */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) return result.data;
  if (result.response.ok) return undefined as T;
  const e = result.error;
  const message =
    e && typeof e === "object" && "message" in e && typeof e.message === "string"
      ? e.message
      : `${result.response.status} ${result.response.statusText}`.trim();
  throw new ApiError(message, result.response.status);
}

/** `X-Total-Count` of a list response. */
export function totalCount(response: Response): number {
  const n = Number(response.headers.get("x-total-count"));
  return Number.isFinite(n) ? n : 0;
}
