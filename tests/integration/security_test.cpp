// Transport security and secrets, against servers configured with
// certificates and users the tests create: PostgreSQL over TLS with
// sslmode=verify-full and SCRAM passwords, Kafka over SASL_SSL with
// SCRAM-SHA-512, and passwords that appear in no log line, metric or error;
// and a broker with an authorizer, where a principal missing an ACL that
// exactly-once delivery needs is told which one to grant.
//
// The certificates come from the openssl command line: one CA signs a server
// certificate for localhost and 127.0.0.1; a second, unrelated CA stands for
// "the wrong CA". PostgreSQL's pg_hba rejects the relay's role without TLS,
// so a stream that arrives at all arrived encrypted.
#include <httplib.h>
#include <libpq-fe.h>

#include <regex>

#include "relay_fixture.h"
#include "relay_http.h"
#include "test_rows.h"

namespace itest {
namespace {

// Distinctive, so that a leak of any part of the machinery that carries them
// is found by a plain substring search.
constexpr const char* kPgPassword = "pg-Pw-7c41e9-verify-full";
constexpr const char* kPgServerOtherPassword = "pg-Other-0d93c5-server";
constexpr const char* kKafkaPassword = "kafka-Pw-3b8d02-scram";
constexpr const char* kKafkaWrongPassword = "kafka-Wrong-91fd6a-scram";
constexpr const char* kKafkaUser = "relay";
constexpr const char* kRelayRole = "outbox_relay";

struct Pki {
  std::unique_ptr<harness::TempDir> dir;
  std::string ca_cert;
  std::string other_ca_cert;  // signs nothing the servers present
  std::string server_cert;
  std::string server_key;
  std::string server_pem;  // key and certificate in one file, Kafka's PEM keystore
};

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = harness::run_command(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "exited with " + std::to_string(r.exit_code) + ": " + r.err);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Pki make_pki() {
  Pki p;
  p.dir = std::make_unique<harness::TempDir>("outbox-pki");
  const std::string d = p.dir->path();
  p.ca_cert = d + "/ca.crt";
  p.other_ca_cert = d + "/other-ca.crt";
  p.server_cert = d + "/server.crt";
  p.server_key = d + "/server.key";
  p.server_pem = d + "/server.pem";
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
           "/CN=outbox-test-ca", "-keyout", d + "/ca.key", "-out", p.ca_cert});
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
           "/CN=outbox-test-other-ca", "-keyout", d + "/other-ca.key", "-out", p.other_ca_cert});
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
           p.server_key, "-out", d + "/server.csr"});
  // verify-full and librdkafka's endpoint identification both check the
  // subjectAltName against the host the client dialled.
  std::ofstream(d + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  openssl({"x509", "-req", "-in", d + "/server.csr", "-CA", p.ca_cert, "-CAkey", d + "/ca.key",
           "-CAcreateserial", "-days", "2", "-extfile", d + "/server.ext", "-out", p.server_cert});
  std::ofstream(p.server_pem) << read_file(p.server_key) << read_file(p.server_cert);
  return p;
}

class SecurityTest : public RelayTest {
 protected:
  static void SetUpTestSuite() { pki_ = std::make_unique<Pki>(make_pki()); }
  // The broker reads its keystore from the PKI directory: servers go first.
  static void TearDownTestSuite() {
    tls_pg_.reset();
    sasl_kafka_.reset();
    pki_.reset();
  }

  // A second PostgreSQL whose pg_hba lets the relay's role in only over TLS
  // and with a SCRAM password; the harness's superuser keeps trust.
  harness::PostgresServer& tls_pg() {
    if (!tls_pg_) {
      harness::PostgresServer::Options o;
      o.ssl_cert_file = pki_->server_cert;
      o.ssl_key_file = pki_->server_key;
      o.extra_hba = {std::string("hostnossl all ") + kRelayRole + " 127.0.0.1/32 reject",
                     std::string("hostssl all ") + kRelayRole + " 127.0.0.1/32 scram-sha-256"};
      tls_pg_ = harness::PostgresServer::start(o);
      std::fprintf(stderr, "harness: PostgreSQL %d with TLS on 127.0.0.1:%d\n",
                   tls_pg_->major_version(), tls_pg_->port());
    }
    return *tls_pg_;
  }

  // A second broker with a SASL_SSL listener (SECURE) and a SCRAM-SHA-512
  // user created when its storage is formatted.
  harness::KafkaBroker& sasl_kafka() {
    if (!sasl_kafka_) {
      harness::KafkaBroker::Options o;
      o.secure_protocol = "SASL_SSL";
      o.format_args = {"--add-scram", std::string("SCRAM-SHA-512=[name=") + kKafkaUser +
                                          ",password=" + kKafkaPassword + "]"};
      o.extra_properties = {
          "sasl.enabled.mechanisms=SCRAM-SHA-512",
          "listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512",
          "listener.name.secure.scram-sha-512.sasl.jaas.config="
          "org.apache.kafka.common.security.scram.ScramLoginModule required;",
          "listener.name.secure.ssl.keystore.type=PEM",
          "listener.name.secure.ssl.keystore.location=" + pki_->server_pem,
      };
      sasl_kafka_ = harness::KafkaBroker::start(o);
    }
    return *sasl_kafka_;
  }

  // The client settings the relay and the test's consumer share.
  static std::map<std::string, std::string> sasl_properties(const std::string& password) {
    return {{"security.protocol", "SASL_SSL"},
            {"sasl.mechanism", "SCRAM-SHA-512"},
            {"sasl.username", kKafkaUser},
            {"sasl.password", password},
            {"ssl.ca.location", pki_->ca_cert}};
  }
  harness::ClientSettings sasl_client() {
    return {sasl_kafka().secure_bootstrap(), sasl_properties(kKafkaPassword)};
  }

  static std::string tls_dsn(harness::PostgresServer& server, const OutboxDb& db,
                             const std::string& ca) {
    return "host=localhost port=" + std::to_string(server.port()) + " dbname=" + db.name +
           " user=" + kRelayRole +
           " password=${PG_PASSWORD} sslmode=verify-full sslrootcert=" + ca + " connect_timeout=10";
  }

  struct RelayConfig {
    std::string dsn;
    std::string slot;
    std::string brokers;
    // Written as given: a value may be a ${VAR} reference.
    std::map<std::string, std::string> kafka_properties;
    bool http = false;
    std::string log_level = "info";
    std::string delivery = "exactly_once";
    std::string transactional_id_prefix;  // empty: the default
  };

  std::string config_text(const RelayConfig& c) {
    std::string yaml;
    auto line = [&](const std::string& text) { yaml += text + "\n"; };
    line("postgres:");
    line("  dsn: \"" + c.dsn + "\"");
    line("  slot: " + c.slot);
    line("  publication: outbox_pub");
    line("  create_publication: false");
    line("  status_interval: 200ms");
    line("  reconnect_backoff: {min: 100ms, max: 1s}");
    line("kafka:");
    line("  brokers: \"" + c.brokers + "\"");
    line("  drain_timeout: 2s");
    line("  delivery: " + c.delivery);
    if (!c.transactional_id_prefix.empty()) {
      line("  transactional_id_prefix: " + c.transactional_id_prefix);
    }
    if (!c.kafka_properties.empty()) line("  properties:");
    for (const auto& [k, v] : c.kafka_properties) line("    " + k + ": " + v);
    line("outbox:");
    line("  on_bad_row: halt");
    line("http:");
    line(std::string("  listen: \"") + (c.http ? "127.0.0.1:0" : "") + "\"");
    line("log:");
    line("  level: " + c.log_level);
    return yaml;
  }

  // Relay-side Kafka properties: the password from the environment.
  static std::map<std::string, std::string> relay_sasl_properties() {
    return sasl_properties("${KAFKA_PASSWORD}");
  }

  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // Waits until the relay's log holds `what` at least `times` times.
  static bool wait_log(harness::Process& relay, const std::string& what, size_t times,
                       std::chrono::milliseconds deadline = 60s) {
    return harness::wait_until([&] { return count(relay.log_contents(), what) >= times; },
                               deadline);
  }

  // librdkafka logs each failed connection once with facility FAIL (and
  // repeats it as an ERROR event): this counts attempts.
  static bool wait_kafka_auth_failures(harness::Process& relay, size_t times,
                                       std::chrono::milliseconds deadline = 60s) {
    static const std::regex re(
        "facility=FAIL [^\n]*SASL authentication error: Authentication "
        "failed[^\n]*SCRAM-SHA-512");
    return harness::wait_until(
        [&] {
          const std::string log = relay.log_contents();
          return static_cast<size_t>(std::distance(std::sregex_iterator(log.begin(), log.end(), re),
                                                   std::sregex_iterator())) >= times;
        },
        deadline);
  }

  static int http_get_status(int port, const char* path) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    auto r = c.Get(path);
    return r ? r->status : -1;
  }

  // Every endpoint's body, for a search for secrets.
  static std::string scrape(int port) {
    std::string all;
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    for (const char* path : {"/metrics", "/healthz", "/readyz", "/status"}) {
      auto r = c.Get(path);
      all +=
          std::string(path) + " " + (r ? std::to_string(r->status) + "\n" + r->body : "-") + "\n";
    }
    return all;
  }

  // Fails the test for each secret found in `text`, naming where.
  static void expect_no_secrets(const std::string& where, const std::string& text) {
    for (const char* secret :
         {kPgPassword, kPgServerOtherPassword, kKafkaPassword, kKafkaWrongPassword}) {
      EXPECT_EQ(text.find(secret), std::string::npos)
          << "'" << secret << "' leaked into " << where << ":\n"
          << text;
    }
  }

  static std::vector<std::string> ids_of(const std::vector<harness::ConsumedRecord>& records) {
    std::vector<std::string> ids;
    for (const auto& r : records) {
      auto id = header(r, "outbox-id");
      ids.push_back(id && *id ? **id : "");
    }
    return ids;
  }

  static inline std::unique_ptr<Pki> pki_;
  static inline std::unique_ptr<harness::PostgresServer> tls_pg_;
  static inline std::unique_ptr<harness::KafkaBroker> sasl_kafka_;
};

void set_role_password(harness::PostgresServer& server, const std::string& password) {
  server.exec("ALTER ROLE " + std::string(kRelayRole) + " PASSWORD " +
              harness::quote_literal(password));
}

// Connects as the relay's role without TLS; the server's answer.
std::string plaintext_connection_error(harness::PostgresServer& server, const OutboxDb& db) {
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(server.port()) +
                          " dbname=" + db.name + " user=" + kRelayRole +
                          " password=" + kPgPassword + " sslmode=disable connect_timeout=10";
  PGconn* conn = PQconnectdb(dsn.c_str());
  std::string error = PQstatus(conn) == CONNECTION_OK ? "" : PQerrorMessage(conn);
  PQfinish(conn);
  return error;
}

TEST_F(SecurityTest, PostgresVerifyFullWithPasswordFromEnvironmentStreamsOverTls) {
  auto db = make_outbox_db(tls_pg());
  set_role_password(tls_pg(), kPgPassword);
  const std::string slot = unique("slot"), topic = unique("events");
  kafka().create_topic(topic, 1);
  // The role cannot reach the server without TLS at all.
  EXPECT_NE(plaintext_connection_error(tls_pg(), db).find("no encryption"), std::string::npos);

  auto relay = start_relay(
      write_config(config_text({tls_dsn(tls_pg(), db, pki_->ca_cert), slot, kafka().bootstrap()})),
      {{"PG_PASSWORD", kPgPassword}});
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const auto walsender_tls = tls_pg().query_scalar(
      "SELECT s.ssl::text || ' ' || s.version FROM pg_stat_ssl s "
      "JOIN pg_replication_slots r ON r.active_pid = s.pid WHERE r.slot_name = " +
          harness::quote_literal(slot),
      db.name);
  EXPECT_TRUE(walsender_tls && walsender_tls->rfind("true TLS", 0) == 0)
      << walsender_tls.value_or("no walsender");
  tls_pg().exec(insert_rows_sql(topic, 0, 3), db.name);
  EXPECT_EQ(ids_of(kafka().consume(read_committed(), topic, 3, 60s)),
            (std::vector<std::string>{row_id(0), row_id(1), row_id(2)}));
  expect_clean_stop(*relay);
}

TEST_F(SecurityTest, PostgresWrongCaLogsCertificateErrorRetriesAndNeverStreams) {
  auto db = make_outbox_db(tls_pg());
  set_role_password(tls_pg(), kPgPassword);
  const std::string slot = unique("slot");
  auto relay = start_relay(write_config(config_text({tls_dsn(tls_pg(), db, pki_->other_ca_cert),
                                                     slot, kafka().bootstrap()})),
                           {{"PG_PASSWORD", kPgPassword}});
  // Three failed attempts, each followed by a backoff: retried, not fatal.
  ASSERT_TRUE(wait_log(*relay, "certificate verify failed", 3)) << relay->log_contents();
  ASSERT_TRUE(wait_log(*relay, "reconnecting in", 3)) << relay->log_contents();
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  const std::string log = relay->log_contents();
  // The wait doubles from reconnect_backoff.min (100ms).
  EXPECT_NE(log.find("reconnecting in 100 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("reconnecting in 200 ms"), std::string::npos) << log;
  EXPECT_EQ(log.find("streaming from"), std::string::npos) << log;
  EXPECT_EQ(tls_pg().query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = " +
                                  harness::quote_literal(slot)),
            std::optional<std::string>("0"));
  expect_clean_stop(*relay);
}

TEST_F(SecurityTest, KafkaSaslSslScramStreamsRows) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot"), topic = unique("events");
  sasl_kafka().create_topic(topic, 2);
  auto relay = start_relay(write_config(config_text({db.dsn, slot, sasl_kafka().secure_bootstrap(),
                                                     relay_sasl_properties()})),
                           {{"KAFKA_PASSWORD", kKafkaPassword}});
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(insert_rows_sql(topic, 0, 20), db.name);
  const std::string end_lsn = current_wal_lsn(db);
  auto records = sasl_kafka().consume(sasl_client(), topic, 20, 60s);
  std::set<std::string> ids;
  for (const auto& id : ids_of(records)) ids.insert(id);
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end_lsn); }, 30s));
  expect_clean_stop(*relay);
  EXPECT_EQ(relay->log_contents().find("Authentication failed"), std::string::npos);
}

// While Kafka refuses the relay's credentials it cannot read the slot's
// checkpoint, so it does not stream: it waits with backoff, with /healthz up
// and /readyz down, and confirms nothing; with the right password it
// delivers every row the slot held. The same in both deliveries.
class KafkaWrongPasswordTest : public SecurityTest {
 protected:
  void waits_for_kafka_and_confirms_nothing(const std::string& delivery) {
    auto db = make_outbox_db();
    const std::string slot = unique("slot"), topic = unique("events");
    sasl_kafka().create_topic(topic, 1);
    RelayConfig rc{db.dsn, slot, sasl_kafka().secure_bootstrap(), relay_sasl_properties(), true};
    rc.delivery = delivery;
    const std::string path = write_config(config_text(rc));
    // The slot exists already, so the rows below are held for the relay.
    pg().exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')", db.name);
    pg().exec(insert_rows_sql(topic, 0, 5), db.name);
    const std::string end_lsn = current_wal_lsn(db);
    auto relay = start_relay(path, {{"KAFKA_PASSWORD", kKafkaWrongPassword}});
    const int port = wait_http_port(*relay);
    ASSERT_GT(port, 0) << relay->log_contents();
    ASSERT_TRUE(wait_log(*relay, "retrying in", 2)) << relay->log_contents();
    ASSERT_TRUE(wait_kafka_auth_failures(*relay, 2)) << relay->log_contents();
    EXPECT_TRUE(relay->running()) << relay->log_contents();
    EXPECT_EQ(http_get_status(port, "/readyz"), 503);
    EXPECT_EQ(http_get_status(port, "/healthz"), 200);
    EXPECT_FALSE(slot_confirmed_at_least(db, slot, end_lsn));
    EXPECT_EQ(relay->log_contents().find(kKafkaWrongPassword), std::string::npos);
    relay->signal(SIGTERM);
    EXPECT_EQ(relay->wait_exit(30s), std::optional<int>(0)) << relay->log_contents();
    EXPECT_FALSE(slot_confirmed_at_least(db, slot, end_lsn));

    auto fixed = start_relay(path, {{"KAFKA_PASSWORD", kKafkaPassword}});
    auto consumer = sasl_client();
    consumer.properties["isolation.level"] = "read_committed";
    std::set<std::string> ids;
    for (const auto& id : ids_of(sasl_kafka().consume(consumer, topic, 5, 60s))) ids.insert(id);
    EXPECT_EQ(ids,
              (std::set<std::string>{row_id(0), row_id(1), row_id(2), row_id(3), row_id(4)}));
    EXPECT_TRUE(
        harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end_lsn); }, 30s));
    expect_clean_stop(*fixed);
  }
};

TEST_F(KafkaWrongPasswordTest, AtLeastOnceWaitsForKafkaWithEndpointsUpAndConfirmsNothing) {
  waits_for_kafka_and_confirms_nothing("at_least_once");
}

TEST_F(KafkaWrongPasswordTest, ExactlyOnceWaitsForKafkaWithEndpointsUpAndConfirmsNothing) {
  waits_for_kafka_and_confirms_nothing("exactly_once");
}

TEST_F(SecurityTest, PasswordsAppearInNoLogLineMetricOrErrorThroughFailuresAndStreaming) {
  auto db = make_outbox_db(tls_pg());
  // The server expects another password than the relay's at first.
  set_role_password(tls_pg(), kPgServerOtherPassword);
  const std::string slot = unique("slot"), topic = unique("events");
  sasl_kafka().create_topic(topic, 1);
  auto kafka_props = relay_sasl_properties();
  // librdkafka's own debug output of the SASL and TLS handshakes as well.
  kafka_props["debug"] = "security,broker";
  RelayConfig rc{tls_dsn(tls_pg(), db, pki_->ca_cert),
                 slot,
                 sasl_kafka().secure_bootstrap(),
                 kafka_props,
                 true,
                 "debug",
                 "at_least_once"};
  const std::string path = write_config(config_text(rc));
  std::string scraped;

  // 1. Wrong Kafka password: the relay waits for Kafka.
  auto refused =
      start_relay(path, {{"PG_PASSWORD", kPgPassword}, {"KAFKA_PASSWORD", kKafkaWrongPassword}});
  const int refused_port = wait_http_port(*refused);
  ASSERT_GT(refused_port, 0) << refused->log_contents();
  ASSERT_TRUE(wait_kafka_auth_failures(*refused, 2)) << refused->log_contents();
  scraped += scrape(refused_port);
  refused->signal(SIGTERM);
  ASSERT_TRUE(refused->wait_exit(30s).has_value()) << refused->log_contents();
  // 2. Wrong PostgreSQL password (as the server sees it), then the server
  // expects the relay's password: it streams.
  auto first =
      start_relay(path, {{"PG_PASSWORD", kPgPassword}, {"KAFKA_PASSWORD", kKafkaPassword}});
  const int port = wait_http_port(*first);
  ASSERT_GT(port, 0) << first->log_contents();
  ASSERT_TRUE(wait_log(*first, "password authentication failed", 2)) << first->log_contents();
  scraped += scrape(port);
  set_role_password(tls_pg(), kPgPassword);
  ASSERT_TRUE(wait_streaming(*first)) << first->log_contents();
  tls_pg().exec(insert_rows_sql(topic, 0, 10), db.name);
  EXPECT_EQ(sasl_kafka().consume(sasl_client(), topic, 10, 60s).size(), 10u);
  scraped += scrape(port);
  first->signal(SIGTERM);
  ASSERT_TRUE(first->wait_exit(30s).has_value()) << first->log_contents();

  // 3. Both right: everything arrives.
  auto second =
      start_relay(path, {{"PG_PASSWORD", kPgPassword}, {"KAFKA_PASSWORD", kKafkaPassword}});
  const int port2 = wait_http_port(*second);
  ASSERT_GT(port2, 0) << second->log_contents();
  EXPECT_EQ(sasl_kafka().consume(sasl_client(), topic, 10, 60s).size(), 10u);
  tls_pg().exec(insert_rows_sql(topic, 10, 5), db.name);
  EXPECT_GE(sasl_kafka().consume(sasl_client(), topic, 15, 60s).size(), 15u);
  scraped += scrape(port2);
  expect_clean_stop(*second);

  // 4. check-config, on this file and on one whose DSN libpq cannot parse:
  // libpq quotes the offending token, here the password itself.
  const std::map<std::string, std::string> env{{"PG_PASSWORD", kPgPassword},
                                               {"KAFKA_PASSWORD", kKafkaPassword}};
  auto checked = harness::run_command({relay_binary(), "check-config", path}, env);
  EXPECT_EQ(checked.exit_code, 0) << checked.err;
  RelayConfig bad = rc;
  bad.dsn =
      "postgresql://outbox_relay:${PG_PASSWORD}%zz@localhost:" + std::to_string(tls_pg().port()) +
      "/" + db.name;
  const std::string bad_path = write_config(config_text(bad));
  auto bad_check = harness::run_command({relay_binary(), "check-config", bad_path}, env);
  EXPECT_EQ(bad_check.exit_code, 2);
  EXPECT_NE(bad_check.err.find("invalid percent-encoded token"), std::string::npos)
      << bad_check.err;
  auto bad_run = harness::run_command({relay_binary(), "run", "--config", bad_path}, env);
  EXPECT_EQ(bad_run.exit_code, 2) << bad_run.err;

  // The texts searched hold what they should, so an empty search cannot pass.
  const std::string log1 = refused->log_contents() + first->log_contents(),
                    log2 = second->log_contents();
  EXPECT_NE(log1.find(" debug "), std::string::npos);
  EXPECT_NE(log1.find("certificate"), std::string::npos) << "no TLS debug output";
  EXPECT_NE(scraped.find("outbox_relay_"), std::string::npos) << scraped;
  EXPECT_NE(checked.out.find("password=****"), std::string::npos) << checked.out;
  EXPECT_NE(checked.out.find("sasl.password: \"****\""), std::string::npos) << checked.out;
  expect_no_secrets("the first relay's log", log1);
  expect_no_secrets("the second relay's log", log2);
  expect_no_secrets("the HTTP endpoints", scraped);
  expect_no_secrets("check-config's output", checked.out + checked.err);
  expect_no_secrets("check-config's error for a malformed DSN", bad_check.out + bad_check.err);
  expect_no_secrets("run's error for a malformed DSN", bad_run.out + bad_run.err);
}


// A broker that authorizes every request (StandardAuthorizer, KRaft). The
// relay logs in as a SCRAM user on a SASL_PLAINTEXT listener and holds
// exactly the ACLs a test grants it. The PLAINTEXT listener carries the
// harness's admin and consumer clients and the broker's own inter-broker and
// controller traffic, all as User:ANONYMOUS, the super user.
class KafkaAclTest : public SecurityTest {
 protected:
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() { acl_kafka_.reset(); }

  harness::KafkaBroker& acl_kafka() {
    if (!acl_kafka_) {
      harness::KafkaBroker::Options o;
      o.secure_protocol = "SASL_PLAINTEXT";
      o.format_args = {"--add-scram", std::string("SCRAM-SHA-512=[name=") + kKafkaUser +
                                          ",password=" + kKafkaPassword + "]"};
      o.extra_properties = {
          "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
          "super.users=User:ANONYMOUS",
          "sasl.enabled.mechanisms=SCRAM-SHA-512",
          "listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512",
          "listener.name.secure.scram-sha-512.sasl.jaas.config="
          "org.apache.kafka.common.security.scram.ScramLoginModule required;",
      };
      acl_kafka_ = harness::KafkaBroker::start(o);
    }
    return *acl_kafka_;
  }

  // One slot's names as the relay derives them in single-slot mode. Each
  // test has its own transactional.id prefix, so its checkpoint topic and
  // the ACLs on it are its own too.
  struct AclScene {
    OutboxDb db;
    std::string slot;
    std::string topic;
    std::string transactional_id;  // <prefix><slot>
    std::string group;             // <prefix><slot>
    std::string checkpoint_topic;  // <prefix>checkpoints
    std::string config_path;
  };

  // The output and checkpoint topics exist (created by the admin, as the
  // relay would create the latter), and so does the slot, with `rows` rows
  // waiting in it.
  AclScene acl_scene(int rows) {
    AclScene s;
    s.db = make_outbox_db();
    s.slot = unique("slot");
    s.topic = unique("events");
    const std::string prefix = unique("acl") + "-";
    s.transactional_id = prefix + s.slot;
    s.group = prefix + s.slot;
    s.checkpoint_topic = prefix + "checkpoints";
    acl_kafka().create_topic(s.topic, 1);
    harness::create_topic(acl_kafka().bootstrap(), s.checkpoint_topic, 1, 30s,
                          {{"cleanup.policy", "compact"}});
    pg().exec("SELECT pg_create_logical_replication_slot(" + harness::quote_literal(s.slot) +
                  ", 'pgoutput')",
              s.db.name);
    if (rows > 0) pg().exec(insert_rows_sql(s.topic, 0, rows), s.db.name);
    RelayConfig rc{s.db.dsn, s.slot, acl_kafka().secure_bootstrap(), relay_properties()};
    rc.transactional_id_prefix = prefix;
    s.config_path = write_config(config_text(rc));
    return s;
  }

  static std::map<std::string, std::string> relay_properties() {
    return {{"security.protocol", "SASL_PLAINTEXT"},
            {"sasl.mechanism", "SCRAM-SHA-512"},
            {"sasl.username", kKafkaUser},
            {"sasl.password", "${KAFKA_PASSWORD}"}};
  }

  // kafka-acls --add --allow-principal User:relay `what`.
  void grant(const std::vector<std::string>& what) {
    std::vector<std::string> args{"--add", "--allow-principal", std::string("User:") + kKafkaUser};
    args.insert(args.end(), what.begin(), what.end());
    acl_kafka().acl(args);
  }
  // What the relay writes: its output topic, and the checkpoint topic's
  // metadata (DESCRIBE, implied by WRITE).
  void grant_topics(const AclScene& s) {
    grant({"--operation", "Write", "--operation", "Describe", "--topic", s.topic, "--topic",
           s.checkpoint_topic});
  }
  void grant_transactional_id(const AclScene& s) {
    grant({"--operation", "Write", "--operation", "Describe", "--transactional-id",
           s.transactional_id});
  }

  std::unique_ptr<harness::Process> start_acl_relay(const AclScene& s) {
    return start_relay(s.config_path, {{"KAFKA_PASSWORD", kKafkaPassword}});
  }

  // Everything committed to the topic, read once the relay has stopped
  // writing to it.
  std::vector<std::string> committed_ids(const std::string& topic) {
    return ids_of(acl_kafka().consume_all_until_quiet(
        harness::ClientSettings{acl_kafka().bootstrap(), {{"isolation.level", "read_committed"}}},
        topic, 1s, 60s));
  }
  std::vector<std::string> written_ids(const std::string& topic) {
    return ids_of(acl_kafka().consume_all_until_quiet(topic, 1s, 60s));
  }

  static std::vector<std::string> row_ids(int first, int count) {
    std::vector<std::string> ids;
    for (int i = first; i < first + count; ++i) ids.push_back(row_id(i));
    return ids;
  }

  static inline std::unique_ptr<harness::KafkaBroker> acl_kafka_;
};

TEST_F(KafkaAclTest, NoTransactionalIdAclStopsAtStartNamingTheIdAndTheAclAndConfirmsNothing) {
  const AclScene s = acl_scene(5);
  grant_topics(s);
  grant({"--operation", "Read", "--group", s.group});
  const auto confirmed_before = confirmed_flush(s.db, s.slot);
  ASSERT_TRUE(confirmed_before);

  auto relay = start_acl_relay(s);
  const auto code = relay->wait_exit(90s);
  const std::string log = relay->log_contents();
  ASSERT_TRUE(code.has_value()) << log;
  EXPECT_EQ(*code, 1) << log;
  EXPECT_NE(log.find("slot=" + s.slot + " cannot take the slot's Kafka output: init_transactions "
                     "for transactional.id '" + s.transactional_id +
                     "' failed: TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("grant the relay's principal WRITE and DESCRIBE on TransactionalId '" +
                     s.transactional_id + "'"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("streaming from"), std::string::npos) << log;
  EXPECT_EQ(confirmed_flush(s.db, s.slot), confirmed_before);
  EXPECT_EQ(written_ids(s.topic), std::vector<std::string>{});
  expect_no_secrets("the relay's log", log);
}

TEST_F(KafkaAclTest, NoCheckpointGroupAclStopsAtStartNamingTheGroupAndTheAclAndConfirmsNothing) {
  const AclScene s = acl_scene(5);
  grant_topics(s);
  grant_transactional_id(s);
  const auto confirmed_before = confirmed_flush(s.db, s.slot);
  ASSERT_TRUE(confirmed_before);

  auto relay = start_acl_relay(s);
  const auto code = relay->wait_exit(90s);
  const std::string log = relay->log_contents();
  ASSERT_TRUE(code.has_value()) << log;
  EXPECT_EQ(*code, 1) << log;
  EXPECT_NE(log.find("slot=" + s.slot + " cannot take the slot's Kafka output: reading the "
                     "checkpoint of group '" + s.group + "' topic '" + s.checkpoint_topic +
                     "' partition 0 failed: GROUP_AUTHORIZATION_FAILED"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("grant the relay's principal READ on Group '" + s.group + "'"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("streaming from"), std::string::npos) << log;
  EXPECT_EQ(confirmed_flush(s.db, s.slot), confirmed_before);
  EXPECT_EQ(written_ids(s.topic), std::vector<std::string>{});
}

// DESCRIBE on the group lets the relay read its checkpoint and stream; the
// first commit of a checkpoint needs READ. The transaction it was in is
// aborted, so none of its records becomes visible, and once READ is granted
// the same slot delivers every row exactly once.
TEST_F(KafkaAclTest, CheckpointGroupWithoutReadAbortsTheFirstTransactionAndStopsNamingTheAcl) {
  const AclScene s = acl_scene(5);
  grant_topics(s);
  grant_transactional_id(s);
  grant({"--operation", "Describe", "--group", s.group});
  const auto confirmed_before = confirmed_flush(s.db, s.slot);
  ASSERT_TRUE(confirmed_before);
  const std::string end_lsn = current_wal_lsn(s.db);

  auto relay = start_acl_relay(s);
  const auto code = relay->wait_exit(90s);
  const std::string log = relay->log_contents();
  ASSERT_TRUE(code.has_value()) << log;
  EXPECT_EQ(*code, 1) << log;
  EXPECT_NE(log.find("streaming from"), std::string::npos) << log;
  EXPECT_NE(log.find("send_offsets_to_transaction for transactional.id '" + s.transactional_id +
                     "' failed: GROUP_AUTHORIZATION_FAILED"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("grant the relay's principal READ on Group '" + s.group + "'"),
            std::string::npos)
      << log;
  EXPECT_EQ(confirmed_flush(s.db, s.slot), confirmed_before);
  EXPECT_EQ(committed_ids(s.topic), std::vector<std::string>{});

  grant({"--operation", "Read", "--group", s.group, "--topic", s.checkpoint_topic});
  auto fixed = start_acl_relay(s);
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end_lsn); },
                                  60s))
      << fixed->log_contents();
  EXPECT_EQ(committed_ids(s.topic), row_ids(0, 5));
  expect_clean_stop(*fixed);
}

TEST_F(KafkaAclTest, CheckpointTopicWithoutReadStopsAtTheFirstCommitNamingTheTopicAndTheAcl) {
  const AclScene s = acl_scene(5);
  grant_topics(s);
  grant_transactional_id(s);
  grant({"--operation", "Read", "--group", s.group});
  const auto confirmed_before = confirmed_flush(s.db, s.slot);
  ASSERT_TRUE(confirmed_before);

  auto relay = start_acl_relay(s);
  const auto code = relay->wait_exit(90s);
  const std::string log = relay->log_contents();
  ASSERT_TRUE(code.has_value()) << log;
  EXPECT_EQ(*code, 1) << log;
  EXPECT_NE(log.find("send_offsets_to_transaction for transactional.id '" + s.transactional_id +
                     "' failed: TOPIC_AUTHORIZATION_FAILED"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("grant the relay's principal READ on Topic '" + s.checkpoint_topic + "'"),
            std::string::npos)
      << log;
  EXPECT_EQ(confirmed_flush(s.db, s.slot), confirmed_before);
  EXPECT_EQ(committed_ids(s.topic), std::vector<std::string>{});
}

TEST_F(KafkaAclTest, EveryAclGrantedStreamsRowsExactlyOnceToReadCommittedConsumers) {
  const AclScene s = acl_scene(20);
  grant_topics(s);
  grant_transactional_id(s);
  grant({"--operation", "Read", "--group", s.group, "--topic", s.checkpoint_topic});

  auto relay = start_acl_relay(s);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(insert_rows_sql(s.topic, 20, 30), s.db.name);
  const std::string end_lsn = current_wal_lsn(s.db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end_lsn); },
                                  60s))
      << relay->log_contents();
  EXPECT_EQ(committed_ids(s.topic), row_ids(0, 50));
  expect_clean_stop(*relay);
  const std::string log = relay->log_contents();
  EXPECT_EQ(log.find("AUTHORIZATION_FAILED"), std::string::npos) << log;
  EXPECT_EQ(log.find("Authentication failed"), std::string::npos) << log;
}

}  // namespace
}  // namespace itest
