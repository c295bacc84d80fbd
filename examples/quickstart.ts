// The quick start: the official @azure/cosmos SDK, unchanged, talking to Cosmos DB through
// cosmosgate. Two things differ from a direct connection: the endpoint (the gateway) and the
// credential (a short-lived token from your passkey sign-in instead of an account key).
//
//   npm start                                        # terminal 1: prints the enrollment link
//   (open the link in a browser, enroll your passkey or security key)
//   export NODE_EXTRA_CA_CERTS=$PWD/.cosmosgate/tls/ca.pem
//   npx cosmosgate login                             # a tap; the session is kept in ~/.config/cosmosgate
//   npx tsx examples/quickstart.ts
//
// On a machine without a browser, `cosmosgate dev` also accepts development tokens:
//   export COSMOSGATE_TOKEN=$(npx cosmosgate dev-token --sub you --group cosmos-admins)
import type { TokenCredential } from "@azure/core-auth";
import { CosmosClient } from "@azure/cosmos";
import { GatewayCredential } from "cosmosgate/client";

const endpoint = process.env.COSMOSGATE_ENDPOINT ?? "https://localhost:8081";
const devToken = process.env.COSMOSGATE_TOKEN;
const credential: TokenCredential = devToken
  ? { getToken: async () => ({ token: devToken, expiresOnTimestamp: Date.now() + 5 * 60_000 }) }
  : new GatewayCredential(); // refreshes from the `cosmosgate login` session when < 2 min remain

const client = new CosmosClient({ endpoint, aadCredentials: credential });

const { database } = await client.databases.createIfNotExists({ id: "shop" });
const { container } = await database.containers.createIfNotExists({
  id: "orders",
  partitionKey: "/customer",
});
await container.items.upsert({ id: "o1", customer: "c1", total: 42 });
const { resource: order } = await container.item("o1", "c1").read();
console.log("read back:", order?.id, order?.total);
const { resources } = await container.items
  .query({
    query: "SELECT c.id, c.total FROM c WHERE c.total > @min",
    parameters: [{ name: "@min", value: 10 }],
  })
  .fetchAll();
console.log("query:", resources);
console.log("Every request above is in the audit trail, with the key you used: npx cosmosgate audit tail");
client.dispose();
