// One huge transaction within bounded memory, and every column type the
// router reads, in both binary and text protocol modes.
#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class LargeAndTypesTest : public RelayTest {};

TEST_F(LargeAndTypesTest, TwoHundredThousandRowTransactionDeliveredInBoundedMemory) {
  auto [db, slot, topic] = new_scene(6);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec(insert_rows_sql(topic, 0, 200000, 256), db.name);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 240s))
      << confirmed_flush(db, slot).value_or("?");
  long rss = peak_rss_kib(relay->pid());
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 120s);
  std::set<std::string> ids;
  for (const auto& r : got) ids.insert(*header(r, "outbox-id").value_or(std::nullopt));
  EXPECT_EQ(ids.size(), 200000u);
  std::printf("200000-row transaction: relay peak RSS %ld KiB\n", rss);
  EXPECT_GT(rss, 0);
  if (memory_bounds_apply()) {
    EXPECT_LT(rss, 256 * 1024);
  }
  expect_clean_stop(*relay);
}

struct TypeCase {
  std::string name;
  std::string ddl;         // column types for (id, topic, key, partition, headers, payload)
  std::string id_sql, key_sql, partition_sql, headers_sql, payload_sql;
  std::string want_id, want_key, want_payload;
  int want_partition;
  std::vector<std::pair<std::string, std::string>> want_headers;
};

class ColumnTypesTest : public RelayTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ColumnTypesTest, EveryRoutedColumnTypeDecodes) {
  const bool binary = GetParam();
  auto db = make_outbox_db();
  const std::string topic = unique("types");
  kafka().create_topic(topic, 4);
  const std::vector<TypeCase> cases = {
      {"a", "id uuid, topic varchar(100), key text, partition int2, headers json, payload bytea",
       "'8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77'", "'k-a'", "3", "'{\"x\": \"1\", \"y\": 2}'",
       "'\\x00ff10'::bytea", "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77", "k-a", std::string("\x00\xff\x10", 3),
       3, {{"x", "1"}, {"y", "2"}}},
      {"b", "id int8, topic text, key varchar(20), partition int8, headers jsonb, payload jsonb",
       "9000000000", "'k-b'", "2", "'[{\"key\": \"t\", \"value\": \"v\"}]'",
       "'{\"a\": [1, 2]}'", "9000000000", "k-b", "{\"a\": [1, 2]}", 2, {{"t", "v"}}},
      {"c", "id int4, topic text, key text, partition int4, headers jsonb, payload text",
       "42", "'k-c'", "1", "'{\"h\": \"w\"}'", "'plain text ü'", "42", "k-c", "plain text ü", 1,
       {{"h", "w"}}},
      {"d", "id int2, topic text, key text, partition int4, headers jsonb, payload json",
       "7", "'k-d'", "0", "NULL", "'{\"j\":true}'", "7", "k-d", "{\"j\":true}", 0, {}},
  };
  for (const auto& c : cases) {
    std::string table = "outbox_" + c.name;
    std::string cols = c.ddl;
    pg().exec("CREATE TABLE " + table + " (" + cols + ")", db.name);
    pg().exec("CREATE PUBLICATION pub_" + c.name + " FOR TABLE " + table +
                  " WITH (publish = 'insert')",
              db.name);
    const std::string slot = unique("slot");
    auto relay = start_relay(write_config(
        "postgres:\n  dsn: \"" + db.dsn + "\"\n  slot: " + slot + "\n  publication: pub_" +
        c.name + "\n  binary: " + (binary ? "true" : "false") + "\nkafka:\n  brokers: \"" +
        kafka().bootstrap() + "\"\n  create_topics: true\noutbox:\n  table: public." + table +
        "\nhttp:\n  listen: \"\"\n"));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec("INSERT INTO " + table + " VALUES (" + c.id_sql + ", '" + topic + "', " + c.key_sql +
                  ", " + c.partition_sql + ", " + c.headers_sql + ", " + c.payload_sql + ")",
              db.name);
    auto got = kafka().consume_all_until_quiet(read_committed(), topic, 1s, 30s);
    auto it = std::find_if(got.begin(), got.end(), [&](const auto& r) {
      return r.key == std::optional<std::string>(c.want_key);
    });
    ASSERT_NE(it, got.end()) << c.name << "\n" << relay->log_contents();
    EXPECT_EQ(it->value, c.want_payload) << c.name;
    EXPECT_EQ(it->partition, c.want_partition) << c.name;
    ASSERT_EQ(it->headers.size(), c.want_headers.size() + 3) << c.name;
    for (size_t i = 0; i < c.want_headers.size(); ++i) {
      EXPECT_EQ(it->headers[i].first, c.want_headers[i].first) << c.name;
      EXPECT_EQ(it->headers[i].second, std::optional<std::string>(c.want_headers[i].second))
          << c.name;
    }
    EXPECT_EQ(header(*it, "outbox-id"), std::optional<std::optional<std::string>>(c.want_id))
        << c.name;
    expect_clean_stop(*relay);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ColumnTypesTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Binary" : "Text"; });

}  // namespace
}  // namespace itest
