#!/usr/bin/env node
import "../dist/bin/lacewing-manager.js";
