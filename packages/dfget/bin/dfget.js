#!/usr/bin/env node
// dfget starts once per download, so its start-up counts: Node 22.1+ keeps
// compiled code in a cache on disk (under the temp dir) and skips compiling
// it again next time; older Node has no such cache and just runs.
import module from "node:module";

module.enableCompileCache?.();
await import("../dist/bin/dfget.js");
