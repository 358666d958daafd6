#!/usr/bin/env node
import "../dist/bin/dfget.js";
