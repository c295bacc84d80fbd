/**
 * The account read (`GET /`) of the embedded store: one region whose read and write locations are
 * the store itself as the client reached it (the Host header), Session consistency. The SDK routes
 * reads and writes to those locations (endpoint discovery), so they must be the address the client
 * used; a proxy in front (the gateway) rewrites them to its own public URL.
 *
 * @param origin the store's origin as the client sees it (from the Host header), e.g. "http://127.0.0.1:8081"
 */
export function accountBody(origin: string): string {
  const endpoint = origin.endsWith("/") ? origin : origin + "/";
  const location = { name: "Local", databaseAccountEndpoint: endpoint };
  return JSON.stringify({
    _self: "",
    id: "cosmosgate-devstore",
    _rid: "cosmosgate-devstore.localhost",
    media: "//media/",
    addresses: "//addresses/",
    _dbs: "//dbs/",
    writableLocations: [location],
    readableLocations: [location],
    enableMultipleWriteLocations: false,
    continuousBackupEnabled: false,
    enableNRegionSynchronousCommit: false,
    enablePerPartitionFailoverBehavior: false,
    userReplicationPolicy: { asyncReplication: false, minReplicaSetSize: 1, maxReplicasetSize: 1 },
    userConsistencyPolicy: { defaultConsistencyLevel: "Session" },
    systemReplicationPolicy: { minReplicaSetSize: 1, maxReplicasetSize: 1 },
    readPolicy: { primaryReadCoefficient: 1, secondaryReadCoefficient: 1 },
    queryEngineConfiguration: JSON.stringify({
      maxSqlQueryInputLength: 262144,
      maxJoinsPerSqlQuery: 5,
      maxLogicalAndPerSqlQuery: 500,
      maxLogicalOrPerSqlQuery: 500,
      maxUdfRefPerSqlQuery: 10,
      maxInExpressionItemsCount: 16000,
      queryMaxInMemorySortDocumentCount: 500,
      maxQueryRequestTimeoutFraction: 0.9,
      sqlAllowNonFiniteNumbers: false,
      sqlAllowAggregateFunctions: true,
      sqlAllowSubQuery: true,
      sqlAllowScalarSubQuery: true,
      allowNewKeywords: true,
      sqlAllowLike: true,
      sqlAllowGroupByClause: true,
      maxSpatialQueryCells: 12,
      spatialMaxGeometryPointCount: 256,
      sqlDisableOptimizationFlags: 0,
      sqlAllowTop: true,
      enableSpatialIndexing: true,
    }),
  });
}
