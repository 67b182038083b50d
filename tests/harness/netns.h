#pragma once

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace harness {

// This machine cannot make network namespaces (not root, no CAP_NET_ADMIN,
// no `ip` or `iptables`, no veth or bridge in the kernel): a reason to skip,
// never a test failure.
struct NetnsUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A private network for fault tests, made of network namespaces only:
//
//   <prefix><pid>-srv   servers: br0 10.213.0.1/24 (PostgreSQL and Kafka listen here)
//        │ br0 ── r0, r1 …  (veth peers, bridge ports)
//   <prefix><pid>-r<i>  relay i: eth0 10.213.0.(11+i)/24
//
// Every namespace, link and address is made here and removed by the
// destructor, or, when the test binary is ended by SIGTERM, SIGINT or SIGHUP,
// before it dies (signal_cleanup.h); the caller's namespace gains no
// interface, address, route or rule. Namespaces left behind by a test binary
// that died of SIGKILL (its pid, in the name, no longer runs) are removed,
// with whatever still runs in them, when the next one is created; those of a
// binary that still runs are left alone.
class NetnsLab {
 public:
  static constexpr const char* kNamePrefix = "outbox-netns-";
  static constexpr const char* kServersAddress = "10.213.0.1";
  static constexpr const char* kSubnet = "10.213.0.0/24";

  // Throws NetnsUnavailable when namespaces cannot be made at all, and
  // std::runtime_error (after removing what it made) for any other failure.
  static std::unique_ptr<NetnsLab> create(int relays);
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  const std::string& servers_netns() const { return servers_; }
  const std::string& relay_netns(int relay) const { return relays_.at(relay); }
  static std::string relay_address(int relay);
  // The argv prefix that runs a command in relay i's namespace.
  std::vector<std::string> in_relay(int relay) const;

  // Drops every TCP segment between relay i and the servers' `port`, both
  // ways, inside relay i's namespace: no reset, no ICMP, as a dead path looks.
  // The servers' other ports stay reachable. Idempotent.
  void cut(int relay, int port);
  // Removes what cut(relay, port) added. Idempotent.
  void heal(int relay, int port);
  // Every cut healed.
  void heal_all();

  // Moves the calling thread into the servers namespace until destroyed.
  // Sockets it opens and threads and processes it starts meanwhile live
  // there (a namespace is inherited from the creating thread), so a test's
  // own clients and servers started from that thread share the servers'
  // network.
  class ServersScope {
   public:
    explicit ServersScope(const NetnsLab& lab);
    ~ServersScope();
    ServersScope(const ServersScope&) = delete;
    ServersScope& operator=(const ServersScope&) = delete;

   private:
    int previous_ = -1;
  };

 private:
  NetnsLab() = default;
  void remove_all() noexcept;
  void drop_rules(int relay, int port, const char* action);

  std::string servers_;
  std::vector<std::string> relays_;
  std::set<std::pair<int, int>> cuts_;  // (relay, port)
};

}  // namespace harness
