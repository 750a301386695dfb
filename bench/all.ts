// `npm run bench`: the key-value benchmark against etcd (bench/cluster.ts), then the streams and
// consumer-group benchmark (bench/streams.ts), each on its own fresh 3-node cluster; both reports
// are printed at the end. Options are passed to both (see each file), e.g. `-- --seconds 3`.
import { runClusterBench } from "./cluster.js";
import { runStreamsBench } from "./streams.js";

const args = process.argv.slice(2);
const kv = await runClusterBench(args);
console.log(`## Key-value: Cairn and etcd\n\n${kv}\n`);
const streams = await runStreamsBench(args);
console.log(`## Streams\n\n${streams}`);
