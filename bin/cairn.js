#!/usr/bin/env node
// The installed `cairn` command: the compiled CLI, built by `npm install` through `prepare`.
import "../dist/cli/run.js";
