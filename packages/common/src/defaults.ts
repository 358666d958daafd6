/**
 * Default ports and paths of every process. The Helm chart's values are
 * checked against these by a test, so there is one source of truth.
 */
export const DEFAULTS = {
  scheduler: { port: 8002, metricsPort: 8003 },
  dfdaemon: {
    /** gRPC for peers and the scheduler (piece sync, download trigger). */
    peerPort: 4000,
    /** HTTP/1.1 piece bytes. */
    uploadPort: 4001,
    /** Registry mirror for containerd. */
    proxyPort: 4002,
    /** /metrics, /healthz, /readyz. */
    metricsPort: 4003,
    socket: "/run/lacewing/dfdaemon.sock",
    dataDir: "/var/lib/lacewing",
  },
  manager: { port: 8080, grpcPort: 8081 },
} as const;
