// The quick start: the official @azure/cosmos SDK, unchanged, talking to Cosmos DB through cosmosgate.
// Two things differ from a direct connection: the endpoint (the gateway) and the credential (a
// short-lived identity token instead of an account key).
//
//   npm start                                    # in one terminal: `cosmosgate dev`
//   export NODE_EXTRA_CA_CERTS=.cosmosgate/tls/ca.pem
//   export COSMOSGATE_TOKEN=$(npx cosmosgate dev-token --sub you --group cosmos-admins)
//   npx tsx examples/quickstart.ts
import { CosmosClient } from "@azure/cosmos";

const endpoint = process.env.COSMOSGATE_ENDPOINT ?? "https://localhost:8081";
const token = process.env.COSMOSGATE_TOKEN;
if (!token) {
  console.error(
    "Set COSMOSGATE_TOKEN first: export COSMOSGATE_TOKEN=$(npx cosmosgate dev-token --sub you --group cosmos-admins)",
  );
  process.exit(2);
}

const client = new CosmosClient({
  endpoint,
  // Any Azure TokenCredential works; this one hands over the token from the environment.
  aadCredentials: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 5 * 60_000 }) },
});

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
console.log("Every request above is in the audit trail: npx cosmosgate audit tail");
