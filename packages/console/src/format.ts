/** Pure formatting for the console's tables. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "unknown";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** "3 s ago", "5 min ago", … from an ISO time; "never" for null. */
export function ago(iso: string | null, now = Date.now()): string {
  if (iso === null) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** The zone a host belongs to, for grouping: its idc, then its location; hosts with neither share one group. */
export function zoneOf(host: { idc: string; location: string }): string {
  if (host.idc === "" && host.location === "") return "no zone";
  return [host.idc, host.location].filter((part) => part !== "").join(" · ");
}

export function shortId(id: string): string {
  return id.length > 16 ? `${id.slice(0, 12)}…` : id;
}
