export {
  CairnClient,
  CairnClientError,
  type CairnClientOptions,
  type KvItem,
  type WriteAck,
} from "./client.js";
