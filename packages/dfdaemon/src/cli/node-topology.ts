/**
 * Which topology labels of its Node a daemon takes its idc and location
 * from. The defaults are the well-known labels every cloud provider's
 * kubelet or cloud controller sets.
 */
export interface TopologyLabels {
  regionLabel: string;
  zoneLabel: string;
}

export const DEFAULT_TOPOLOGY_LABELS: TopologyLabels = {
  regionLabel: "topology.kubernetes.io/region",
  zoneLabel: "topology.kubernetes.io/zone",
};

export interface NodeTopology {
  idc?: string;
  location?: string;
}

/** A Kubernetes label value: at most 63 characters, alphanumerics with `-`, `_` and `.` inside. It can never hold the location's `|`. */
const LABEL_VALUE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * The daemon's idc and location from its Node's labels: the idc is the
 * region, the location `region|zone`, so the scheduler's location score
 * (longest common prefix) prefers a parent in the same zone, then one in
 * the same region, and `topology: isolation` never crosses a region. A
 * missing (or malformed) label gives nothing rather than a guess.
 */
export function topologyOfLabels(labels: Readonly<Record<string, string>>, keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS): NodeTopology {
  const valid = (value: string | undefined): string | undefined => (value !== undefined && LABEL_VALUE.test(value) ? value : undefined);
  const region = valid(labels[keys.regionLabel]);
  const zone = valid(labels[keys.zoneLabel]);
  const topology: NodeTopology = {};
  if (region !== undefined) topology.idc = region;
  if (region !== undefined && zone !== undefined) topology.location = `${region}|${zone}`;
  else if (zone !== undefined) topology.location = zone;
  return topology;
}

/**
 * The config file the daemon runs with: `base` (the chart's config values)
 * with the node's idc and location added where `base` does not set them.
 * Flags still win over the file, so the chart's `idc` and `location`
 * values override both.
 */
export function withTopology(base: Readonly<Record<string, unknown>>, topology: NodeTopology): Record<string, unknown> {
  const config: Record<string, unknown> = { ...base };
  if (topology.idc !== undefined && (config["idc"] === undefined || config["idc"] === "")) config["idc"] = topology.idc;
  if (topology.location !== undefined && (config["location"] === undefined || config["location"] === "")) config["location"] = topology.location;
  return config;
}
