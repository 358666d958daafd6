import knexPkg, { type Knex } from "knex";
import ClientPgLite from "knex-pglite";
import { ErrorCode, LacewingError } from "@lacewing/common";
import { migrationSource } from "./migrations.js";

export interface DatabaseOptions {
  /** Postgres URL; empty for the embedded Postgres (PGlite). */
  url: string;
  /** Schema for the manager's tables (tests use one per run). */
  schema: string;
  /** Directory of the embedded database; empty keeps it in memory. */
  dataDir: string;
}

/** Opens the database and brings its schema up to date. */
export async function openDatabase(options: DatabaseOptions): Promise<Knex> {
  if (!/^[a-z_][a-z0-9_]*$/i.test(options.schema))
    throw new LacewingError(
      ErrorCode.config,
      "invalid_argument",
      `invalid config: databaseSchema ${JSON.stringify(options.schema)} is not a plain identifier`,
      {
        details: { key: "databaseSchema" },
      },
    );
  const db =
    options.url === ""
      ? knexPkg.knex({
          client: ClientPgLite,
          dialect: "postgres",
          connection: options.dataDir === "" ? {} : { filename: options.dataDir },
          searchPath: [options.schema],
        })
      : knexPkg.knex({ client: "pg", connection: options.url, searchPath: [options.schema], pool: { min: 0, max: 10 } });
  try {
    await db.raw(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
    await db.migrate.latest({ migrationSource, schemaName: options.schema, tableName: "knex_migrations" });
  } catch (err) {
    await db.destroy();
    throw new LacewingError(ErrorCode.database, "unavailable", `cannot open the database: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
