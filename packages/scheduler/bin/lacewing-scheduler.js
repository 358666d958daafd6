#!/usr/bin/env node
import "../dist/bin/lacewing-scheduler.js";
