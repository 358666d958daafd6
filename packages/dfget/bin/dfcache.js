#!/usr/bin/env node
// See dfget.js: the compile cache spares each run most of its start-up.
import module from "node:module";

module.enableCompileCache?.();
await import("../dist/bin/dfcache.js");
