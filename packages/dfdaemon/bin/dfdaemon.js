#!/usr/bin/env node
import "../dist/bin/dfdaemon.js";
