import type { Knex } from "knex";

interface Migration {
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

/**
 * Migrations live in code under stable names, so the names recorded in the
 * migrations table are the same whether the manager runs from src or dist.
 * Append new entries; never rename or edit a released one.
 */
const MIGRATIONS: ReadonlyArray<readonly [string, Migration]> = [
  [
    "0001_clusters_and_jobs",
    {
      async up(db) {
        await db.schema.createTable("clusters", (t) => {
          t.increments("id").primary();
          t.string("name", 255).notNullable().unique();
          t.text("description").notNullable().defaultTo("");
          t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
        });
        await db("clusters").insert({ name: "default", description: "the cluster of the configured schedulers" });
        await db.schema.createTable("jobs", (t) => {
          t.string("id", 64).primary();
          t.string("type", 32).notNullable();
          t.string("state", 16).notNullable();
          // Arguments as the API shows them: credentials redacted.
          t.jsonb("args").notNullable();
          // Credentials the job needs to run; never returned by the API.
          t.jsonb("secrets").notNullable();
          t.jsonb("tasks").notNullable();
          t.text("error").notNullable().defaultTo("");
          t.integer("attempts").notNullable().defaultTo(0);
          t.timestamp("created_at", { useTz: true }).notNullable();
          t.timestamp("updated_at", { useTz: true }).notNullable();
          t.timestamp("started_at", { useTz: true });
          t.timestamp("finished_at", { useTz: true });
          t.index(["state", "created_at"]);
          t.index(["type", "created_at"]);
        });
      },
      async down(db) {
        await db.schema.dropTable("jobs");
        await db.schema.dropTable("clusters");
      },
    },
  ],
  [
    // Final jobs used to keep their credentials for good; they are dropped now when a job ends.
    "0002_purge_final_job_secrets",
    {
      async up(db) {
        await db("jobs").whereIn("state", ["succeeded", "failed", "cancelled"]).update({ secrets: "{}" });
      },
      async down() {
        // Purged credentials cannot come back.
      },
    },
  ],
];

/** A knex migration source over MIGRATIONS. */
export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve(MIGRATIONS.map(([name]) => name)),
  getMigrationName: (name) => name,
  getMigration: (name) => {
    const migration = MIGRATIONS.find(([candidate]) => candidate === name)?.[1];
    if (migration === undefined) return Promise.reject(new Error(`unknown migration ${name}`));
    return Promise.resolve(migration);
  },
};
