#!/usr/bin/env node
// Piece writes end in fdatasync, which holds a libuv pool thread; with the
// default 4 threads a few syncs would stall the reads that serve peers.
process.env.UV_THREADPOOL_SIZE ??= "16";
await import("../dist/bin/dfdaemon.js");
