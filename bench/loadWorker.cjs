// Runs autocannon programmatically in its own process (the CLI cannot pass a header value such as
// ["p1"], which its argument parser reads as a sub-argument list). Prints the result as JSON.
const autocannon = require("autocannon");
const { url, headers, connections, seconds } = JSON.parse(process.argv[2]);
autocannon({ url, headers, connections, duration: seconds }, (err, result) => {
  if (err) {
    process.stderr.write(String(err));
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(result));
});
