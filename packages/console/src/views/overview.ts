import type { HostListView, HostView, SchedulerStatusView } from "@lacewing/manager";
import { ApiError, call } from "../api.js";
import { badge, fill, h, meter } from "../dom.js";
import { ago, formatBytes, zoneOf } from "../format.js";
import type { ViewContext } from "../main.js";
import { poll } from "../poll.js";

/** The cluster at a glance: schedulers, seed peers, every host grouped by zone, and their health. Refreshed every 2 s. */
export async function renderOverview(ctx: ViewContext): Promise<void> {
  const summary = h("div", { class: "tiles", "aria-live": "polite" });
  const schedulers = h("section", { "aria-labelledby": "schedulers-title" });
  const zones = h("section", { "aria-labelledby": "hosts-title" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  fill(ctx.main, h("h1", {}, "Cluster overview"), problem, summary, schedulers, zones);
  await poll(
    ctx.signal,
    2_000,
    async () => {
      const [{ schedulers: list }, hosts] = await Promise.all([
        call<{ schedulers: SchedulerStatusView[] }>("GET", "/schedulers"),
        call<HostListView>("GET", "/hosts"),
      ]);
      problem.hidden = true;
      renderSummary(summary, list, hosts.hosts);
      renderSchedulers(schedulers, list);
      renderZones(zones, hosts.hosts);
    },
    (err) => {
      if (err instanceof ApiError && err.status === 401) return ctx.unauthorized();
      problem.hidden = false;
      fill(problem, `Refresh failed: ${(err as Error).message}`);
    },
  );
}

function tile(label: string, value: string, detail: string): HTMLElement {
  return h(
    "div",
    { class: "tile" },
    h("span", { class: "tile-value" }, value),
    h("span", { class: "tile-label" }, label),
    h("span", { class: "tile-detail" }, detail),
  );
}

function renderSummary(element: HTMLElement, schedulers: SchedulerStatusView[], hosts: HostView[]): void {
  const seeds = hosts.filter((host) => host.type === "seed");
  const alive = hosts.filter((host) => host.alive).length;
  const reachable = schedulers.filter((s) => s.reachable).length;
  fill(
    element,
    tile("schedulers", `${reachable}/${schedulers.length}`, "reachable"),
    tile("seed peers", String(seeds.length), `${seeds.filter((s) => s.alive).length} alive`),
    tile("hosts", String(hosts.length), `${alive} alive, ${hosts.length - alive} stale`),
    tile("cache", formatBytes(hosts.reduce((sum, host) => sum + host.cacheBytes, 0)), "held on all hosts"),
  );
}

function renderSchedulers(element: HTMLElement, schedulers: SchedulerStatusView[]): void {
  fill(
    element,
    h("h2", { id: "schedulers-title" }, "Schedulers"),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Address"),
            h("th", { scope: "col" }, "Health"),
            h("th", { scope: "col" }, "Hosts"),
            h("th", { scope: "col" }, "Error"),
          ),
        ),
        h(
          "tbody",
          {},
          ...schedulers.map((s) =>
            h(
              "tr",
              {},
              h("td", {}, h("code", {}, s.address)),
              h("td", {}, badge(s.reachable ? "reachable" : "unreachable")),
              h("td", {}, s.hostCount),
              h("td", {}, s.error),
            ),
          ),
        ),
      ),
    ),
  );
}

function renderZones(element: HTMLElement, hosts: HostView[]): void {
  const groups = new Map<string, HostView[]>();
  for (const host of hosts) groups.set(zoneOf(host), [...(groups.get(zoneOf(host)) ?? []), host]);
  const sorted = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
  fill(
    element,
    h("h2", { id: "hosts-title" }, `Hosts by zone (${hosts.length})`),
    ...sorted.map(([zone, members]) =>
      h(
        "section",
        { class: "zone", "aria-label": `zone ${zone}` },
        h("h3", {}, `Zone: ${zone}`, h("span", { class: "count" }, ` ${members.length} host${members.length === 1 ? "" : "s"}`)),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "hosts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ...["Host", "Type", "Health", "Address", "Cache", "Upload load", "Peers", "Last announce"].map((title) => h("th", { scope: "col" }, title)),
              ),
            ),
            h(
              "tbody",
              {},
              ...members
                .sort((a, b) => (a.type === b.type ? a.hostname.localeCompare(b.hostname) : a.type === "seed" ? -1 : 1))
                .map((host) =>
                  h(
                    "tr",
                    { "data-host-id": host.id },
                    h("th", { scope: "row" }, host.hostname, h("br"), h("small", { class: "muted" }, host.id)),
                    h("td", {}, badge(host.type)),
                    h("td", {}, badge(host.alive ? "alive" : "stale")),
                    h("td", {}, h("code", {}, `${host.ip}:${host.port}`)),
                    h(
                      "td",
                      {},
                      host.cacheQuotaBytes > 0
                        ? [
                            meter(host.cacheBytes / host.cacheQuotaBytes, "cache used"),
                            h("br"),
                            `${formatBytes(host.cacheBytes)} of ${formatBytes(host.cacheQuotaBytes)}`,
                          ]
                        : formatBytes(host.cacheBytes),
                    ),
                    h(
                      "td",
                      {},
                      host.uploadLimit > 0 ? `${host.uploadCount}/${host.uploadLimit} slots` : `${host.uploadCount} uploads`,
                      h("br"),
                      h("small", {}, `${formatBytes(host.uploadBytesPerSecond)}/s, ${formatBytes(host.uploadBytes)} total`),
                    ),
                    h("td", {}, host.peerCount),
                    h("td", {}, h("time", { datetime: host.lastAnnouncedAt ?? "" }, ago(host.lastAnnouncedAt))),
                  ),
                ),
            ),
          ),
        ),
      ),
    ),
  );
}
