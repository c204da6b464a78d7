#!/usr/bin/env node
// The published entry point runs the compiled CLI (built by `npm install`'s prepare step).
import '../dist/cli/main.js';
