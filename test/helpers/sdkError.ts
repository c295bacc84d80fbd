/** Runs `fn`, which must fail through the @azure/cosmos SDK, and returns the SDK error's code, substatus and message. */
export async function sdkError(
  fn: () => Promise<unknown>,
): Promise<{ code: number; substatus?: number; message: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code: number; substatus?: number; message: string };
    return { code: e.code, substatus: e.substatus, message: e.message };
  }
  throw new Error("expected the SDK call to fail, and it succeeded");
}
