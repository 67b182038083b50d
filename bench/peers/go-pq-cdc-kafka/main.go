// The benchmark's glue around go-pq-cdc-kafka (github.com/Trendyol/go-pq-cdc-kafka):
// the library is a Go package, not a program, so this main configures it the
// way its README and its own benchmark do and maps the outbox table to one
// topic as outbox-relay does: key = the key column, value = the payload
// column's bytes, plus the row's id as an "id" header (what Debezium's outbox
// EventRouter adds). bench/peers/fetch-go-pq-cdc-kafka.sh copies it out and
// builds it against the library; nothing of the library is committed.
//
// Every Kafka setting left at 0 or "" keeps the library's default
// (config.Connector.SetDefault): producerBatchSize 2000, producerBatchBytes
// "1mb", producerBatchTickerDuration 10s, requiredAcks 1, no compression.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	cdc "github.com/Trendyol/go-pq-cdc-kafka"
	"github.com/Trendyol/go-pq-cdc-kafka/config"
	cdcconfig "github.com/Trendyol/go-pq-cdc/config"
	"github.com/Trendyol/go-pq-cdc/pq/publication"
	"github.com/Trendyol/go-pq-cdc/pq/slot"
	gokafka "github.com/segmentio/kafka-go"
)

func main() {
	host := flag.String("host", "127.0.0.1", "PostgreSQL host")
	port := flag.Int("port", 5432, "PostgreSQL port")
	user := flag.String("user", "postgres", "PostgreSQL user")
	// The library refuses an empty password; the benchmark's server trusts
	// loopback connections and ignores it.
	password := flag.String("password", "unused-trust-auth", "PostgreSQL password")
	database := flag.String("database", "postgres", "database")
	slotName := flag.String("slot", "", "existing logical slot (created before the backlog)")
	pub := flag.String("publication", "outbox_pub", "existing publication")
	schema := flag.String("schema", "public", "outbox table's schema")
	table := flag.String("table", "outbox", "outbox table")
	topic := flag.String("topic", "", "Kafka topic every row goes to")
	brokers := flag.String("brokers", "", "Kafka bootstrap host:port")
	metricPort := flag.Int("metric-port", 0, "port of the library's /metrics and /status server")
	batchSize := flag.Int("batch-size", 0, "kafka.producerBatchSize (0: library default)")
	batchBytes := flag.String("batch-bytes", "", "kafka.producerBatchBytes (empty: library default)")
	ticker := flag.Duration("batch-ticker", 0, "kafka.producerBatchTickerDuration (0: library default)")
	acks := flag.Int("required-acks", 0, "kafka.requiredAcks: 1 or -1 (0: library default)")
	compression := flag.Int("compression", 0, "kafka.compression: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd")
	flag.Parse()
	if *slotName == "" || *topic == "" || *brokers == "" || *metricPort == 0 {
		fmt.Fprintln(os.Stderr, "go-pq-cdc-kafka-bench: --slot, --topic, --brokers and --metric-port are required")
		os.Exit(2)
	}

	cfg := config.Connector{
		CDC: cdcconfig.Config{
			Host:     *host,
			Port:     *port,
			Username: *user,
			Password: *password,
			Database: *database,
			// The benchmark creates the publication and the slot, the slot
			// before the backlog, as it does for every contender.
			Publication: publication.Config{
				CreateIfNotExists: false,
				Name:              *pub,
				Operations:        publication.Operations{publication.OperationInsert},
				Tables:            publication.Tables{{Name: *table, Schema: *schema}},
			},
			Slot: slot.Config{
				CreateIfNotExists:           false,
				Name:                        *slotName,
				SlotActivityCheckerInterval: 1000,
			},
			Metric: cdcconfig.MetricConfig{Port: *metricPort},
			Logger: cdcconfig.LoggerConfig{LogLevel: slog.LevelInfo},
		},
		Kafka: config.Kafka{
			TableTopicMapping:           map[string]string{*schema + "." + *table: *topic},
			Brokers:                     []string{*brokers},
			ProducerBatchSize:           *batchSize,
			ProducerBatchBytes:          *batchBytes,
			ProducerBatchTickerDuration: *ticker,
			RequiredAcks:                *acks,
			Compression:                 int8(*compression),
		},
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	connector, err := cdc.NewConnector(ctx, cfg, handler)
	if err != nil {
		slog.Error("new connector", "error", err)
		os.Exit(1)
	}
	go connector.Start(ctx)
	<-ctx.Done()
	closed := make(chan struct{})
	go func() { connector.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		slog.Error("close did not finish in 10 s")
		os.Exit(1)
	}
}

// handler maps one outbox row to one record. A row it cannot map stops the
// program: returning no record would let the library acknowledge (skip) it.
func handler(msg *cdc.Message) []gokafka.Message {
	if !msg.Type.IsInsert() {
		return nil
	}
	payload, ok := msg.NewData["payload"].([]byte)
	if !ok {
		panic(fmt.Sprintf("outbox row without a bytea payload: %T", msg.NewData["payload"]))
	}
	m := gokafka.Message{Value: payload}
	if key, ok := msg.NewData["key"].(string); ok {
		m.Key = []byte(key)
	}
	if id, ok := msg.NewData["id"].([16]byte); ok {
		m.Headers = []gokafka.Header{{Key: "id", Value: []byte(fmt.Sprintf("%x-%x-%x-%x-%x",
			id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]))}}
	}
	return []gokafka.Message{m}
}
