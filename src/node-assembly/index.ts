// The public surface of the node assembly: the one way a node is built, for the CLI, the simulator
// and the tests.
export {
  CairnNode,
  type CairnNodeHooks,
  type CairnNodeOptions,
  type CairnNodeSettings,
  corruptionIn,
  defaultNodeSettings,
  mainGroup,
  type NodeMembership,
} from "./cairn-node.js";
