// node-postgres: the values a Node.js user reads back (types decide what JavaScript gets),
// settings, and search_path naming a database.
const assert = require("assert");
const { Client } = require("pg");

async function main() {
  const client = new Client({ connectionString: process.argv[2] });
  await client.connect();
  const one = async (sql, params) => (await client.query(sql, params)).rows[0];
  try {
    assert.deepStrictEqual(await one("show timezone"), { TimeZone: "UTC" });
    assert.deepStrictEqual(await one("select current_setting('DateStyle') as ds"), { ds: "ISO, MDY" });
    assert.deepStrictEqual(await one("select current_user, session_user"), {
      current_user: "admin",
      session_user: "admin",
    });
    assert.deepStrictEqual(
      await one("select to_char(timestamp '2024-01-10 09:30:00', 'YYYY-MM-DD HH24:MI') as t"),
      { t: "2024-01-10 09:30" },
    );
    await client.query('create database "dfs://nodepg" partitioned by VALUE(1..3)');
    await client.query('create table "dfs://nodepg"."t"(k INT, v DOUBLE, s STRING) partitioned by k');
    await client.query('insert into "dfs://nodepg"."t" values ($1, $2, $3), (2, null, null)', [1, 1.5, "x"]);
    assert.strictEqual((await one("select 1 as one")).one, 1);
    await client.query('set search_path to "dfs://nodepg"');
    assert.deepStrictEqual(await one("select current_schema() as s"), { s: "dfs://nodepg" });
    const rows = (await client.query("select k, v, s from t order by k")).rows;
    assert.deepStrictEqual(rows, [
      { k: 1, v: 1.5, s: "x" },
      { k: 2, v: null, s: null },
    ]);
  } finally {
    await client.end();
  }
  console.log("ok node_pg");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
