// Spec names by UUID, for the runner pages (a runner lists its specs by UUID).
// Loaded once a session (specs are few), reloaded after a spec changes.

import { api, ok, totalCount, type Spec } from "./client";

let cache: Promise<Map<string, Spec>> | null = null;

async function load(): Promise<Map<string, Spec>> {
  const map = new Map<string, Spec>();
  // At most 20 pages of 255: past that, names fall back to short UUIDs.
  for (let page = 1; page <= 20; page++) {
    const res = await api.GET("/v0/specs", { params: { query: { archived: true, per_page: 255, page } } });
    const specs = ok(res);
    for (const s of specs) map.set(s.uuid, s);
    if (specs.length < 255 || map.size >= totalCount(res.response)) break;
  }
  return map;
}

export function specMap(): Promise<Map<string, Spec>> {
  if (!cache) {
    cache = load();
    cache.catch(() => {
      cache = null;
    });
  }
  return cache;
}

export function forgetSpecs(): void {
  cache = null;
}

/** The map, reloaded once if it lacks one of these specs (made since it was loaded). */
export async function specMapFor(uuids: Iterable<string>): Promise<Map<string, Spec>> {
  let map = await specMap();
  for (const u of uuids) {
    if (!map.has(u)) {
      forgetSpecs();
      map = await specMap();
      break;
    }
  }
  return map;
}
