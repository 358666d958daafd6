import { ErrorCode, LacewingError } from "@lacewing/common";
import { MANIFEST_PATH } from "../jobs/job-args.js";
import { RegistrySession, type RegistryCredentials } from "./registry-auth.js";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(", ");

export interface ImageLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** `<scheme>://<registry>/v2/<name>/blobs/<digest>`: the URL a pull fetches. */
  url: string;
}

export interface ResolvedImage {
  /**
   * The image config blob. A pull fetches it like a layer (a blob GET,
   * which the mirror turns into a P2P task), so a preheat warms it too.
   */
  config: ImageLayer | undefined;
  layers: ImageLayer[];
  /** What the registry accepted (Bearer token or Basic); seed peers need it for the blobs. */
  authorization: string | undefined;
  /** The authorization to send with a blob download started now: a new token once the first one aged. */
  freshAuthorization(signal?: AbortSignal): Promise<string | undefined>;
}

export interface ResolveImageOptions {
  manifestUrl: string;
  /** "os/arch[/variant]". */
  platform: string;
  credentials: RegistryCredentials;
  signal?: AbortSignal;
  /** Clock for token lifetimes (tests). */
  now?: () => number;
}

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ManifestBody {
  mediaType?: string;
  config?: Descriptor;
  manifests?: Descriptor[];
  layers?: Descriptor[];
  schemaVersion?: number;
}

/** Resolves an image manifest URL to its layers: index → platform manifest → layers. */
export async function resolveImage(options: ResolveImageOptions): Promise<ResolvedImage> {
  const url = new URL(options.manifestUrl);
  const match = MANIFEST_PATH.exec(url.pathname);
  if (match === null) throw registryError("failed_precondition", `${url.pathname} is not a manifest path`);
  const name = match[1] ?? "";
  const base = `${url.protocol}//${url.host}/v2/${name}`;
  const session = new RegistrySession(options.credentials, options.now === undefined ? {} : { now: options.now });
  const signal = options.signal === undefined ? {} : { signal: options.signal };

  let manifest = await getManifest(session, options.manifestUrl, signal);
  if (Array.isArray(manifest.manifests)) {
    const chosen = pickPlatform(manifest.manifests, options.platform);
    if (chosen?.digest === undefined) throw registryError("failed_precondition", `the image has no manifest for platform ${options.platform}`);
    manifest = await getManifest(session, `${base}/manifests/${chosen.digest}`, signal);
  }
  if (!Array.isArray(manifest.layers))
    throw registryError("failed_precondition", "the manifest lists no layers (only OCI and Docker v2 manifests are supported)");
  const blob = (descriptor: Descriptor, what: string): ImageLayer => {
    if (typeof descriptor.digest !== "string" || !BLOB_DIGEST.test(descriptor.digest))
      throw registryError("failed_precondition", `the manifest has a ${what} without a valid digest`);
    return { digest: descriptor.digest, size: descriptor.size ?? -1, mediaType: descriptor.mediaType ?? "", url: `${base}/blobs/${descriptor.digest}` };
  };
  const layers = manifest.layers.map((layer) => blob(layer, "layer"));
  const config = manifest.config === undefined ? undefined : blob(manifest.config, "config");
  return { config, layers, authorization: session.authorization, freshAuthorization: (signal) => session.freshAuthorization(signal) };
}

const BLOB_DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

async function getManifest(session: RegistrySession, url: string, options: { signal?: AbortSignal }): Promise<ManifestBody> {
  const response = await session.fetch(url, { accept: ACCEPT, ...options });
  if (!response.ok) {
    await response.body?.cancel();
    const kind = response.status === 401 || response.status === 403 ? "permission_denied" : response.status === 404 ? "not_found" : "unavailable";
    throw registryError(kind, `registry answered ${response.status} for ${new URL(url).pathname}`);
  }
  try {
    return (await response.json()) as ManifestBody;
  } catch (err) {
    throw registryError("failed_precondition", `the manifest at ${new URL(url).pathname} is not JSON`, err);
  }
}

/** The index entry for "os/arch[/variant]"; without a variant asked for, any variant of the arch does. */
export function pickPlatform(manifests: readonly Descriptor[], platform: string): Descriptor | undefined {
  const [os, architecture, variant] = platform.split("/");
  const candidates = manifests.filter((m) => m.platform?.os === os && m.platform?.architecture === architecture);
  if (variant !== undefined) return candidates.find((m) => m.platform?.variant === variant);
  return candidates.find((m) => m.platform?.variant === undefined || m.platform.variant === "") ?? candidates[0];
}

function registryError(kind: "failed_precondition" | "permission_denied" | "not_found" | "unavailable", message: string, cause?: unknown): LacewingError {
  return new LacewingError(ErrorCode.managerRegistry, kind, message, { cause });
}
