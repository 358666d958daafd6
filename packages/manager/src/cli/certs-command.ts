import { readFile, stat, writeFile, mkdir, chmod } from "node:fs/promises";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { ErrorCode, LacewingError, ROLES, createCertificateAuthority, issueCertificate, writeTlsDir, type Role } from "@lacewing/common";

const CA_CERT = "ca.crt";
const CA_KEY = "ca.key";

function days(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 36_500) throw new InvalidArgumentError("expected a whole number of days from 1 to 36500");
  return parsed;
}

function role(value: string): Role {
  if (!(ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${ROLES.join(", ")}`);
  return value as Role;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * `lacewing-manager certs`: the cluster CA and the certificates of its
 * processes, for one-machine setups and clusters without cert-manager (the
 * Helm chart makes its own).
 *
 *   lacewing-manager certs init --dir ./pki
 *   lacewing-manager certs issue --ca-dir ./pki --role peer --name node-1 --out ./tls/node-1
 */
export function certsCommand(): Command {
  const certs = new Command("certs").description("create the cluster CA and issue role certificates (manager, scheduler, seed, peer)");
  certs
    .command("init")
    .description("create a cluster CA: DIR/ca.crt and DIR/ca.key (keep the key secret; it makes cluster members)")
    .requiredOption("--dir <dir>", "where to write ca.crt and ca.key")
    .option("--name <name>", "the CA's common name", "lacewing cluster CA")
    .option("--days <days>", "validity in days", days, 3650)
    .option("--force", "replace an existing CA (every certificate it issued stops being trusted)")
    .action(async (flags: { dir: string; name: string; days: number; force?: boolean }) => {
      if (!flags.force && (await exists(join(flags.dir, CA_KEY))))
        throw new LacewingError(ErrorCode.usage, "already_exists", `${join(flags.dir, CA_KEY)} exists; use --force to replace the CA`);
      const ca = createCertificateAuthority({ name: flags.name, validDays: flags.days });
      await mkdir(flags.dir, { recursive: true, mode: 0o700 });
      await writeFile(join(flags.dir, CA_CERT), ca.certPem);
      await writeFile(join(flags.dir, CA_KEY), ca.keyPem, { mode: 0o600 });
      await chmod(join(flags.dir, CA_KEY), 0o600);
      process.stdout.write(`wrote ${join(flags.dir, CA_CERT)} and ${join(flags.dir, CA_KEY)}\n`);
    });
  certs
    .command("issue")
    .description("issue a certificate for one process: OUT/ca.crt, OUT/tls.crt, OUT/tls.key (what --tls-dir reads)")
    .requiredOption("--ca-dir <dir>", "the directory certs init wrote")
    .requiredOption("--role <role>", `what the holder may do: ${ROLES.join(", ")}`, role)
    .option("--name <name>", "who holds it (a node or pod name); part of its identity", "")
    .requiredOption("--out <dir>", "where to write the TLS directory")
    .option("--days <days>", "validity in days", days, 365)
    .action(async (flags: { caDir: string; role: Role; name: string; out: string; days: number }) => {
      const ca = { certPem: await readCa(flags.caDir, CA_CERT), keyPem: await readCa(flags.caDir, CA_KEY) };
      let issued;
      try {
        issued = issueCertificate(ca, { role: flags.role, name: flags.name, validDays: flags.days });
      } catch (err) {
        if (err instanceof RangeError) throw new LacewingError(ErrorCode.usage, "invalid_argument", err.message);
        throw err;
      }
      await writeTlsDir(flags.out, ca.certPem, issued);
      process.stdout.write(`wrote ${flags.out}/{ca.crt,tls.crt,tls.key} for lacewing:${flags.role}${flags.name === "" ? "" : `:${flags.name}`}\n`);
    });
  return certs;
}

async function readCa(dir: string, file: string): Promise<string> {
  try {
    return await readFile(join(dir, file), "utf8");
  } catch (err) {
    throw new LacewingError(
      ErrorCode.usage,
      "invalid_argument",
      `cannot read ${join(dir, file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (run certs init first)`,
    );
  }
}
