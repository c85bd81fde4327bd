// Endpoint strings: every kind with its positional and keyword forms and defaults, Twisted's
// escaping, each refusal naming the field and the reason, the canonical printing, and the
// round-trip property (a parsed endpoint printed and parsed again is the same value).
#include "daemonkit/core/app/endpoint_string.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWithMessage;
using testing::HasSubstr;

template <typename T>
T server_as(std::string_view text) {
  auto parsed = parse_server_endpoint(text);
  EXPECT_TRUE(parsed) << text << ": " << (parsed ? "" : parsed.error().message);
  if (!parsed) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*parsed)) << text;
  return std::holds_alternative<T>(*parsed) ? std::get<T>(*parsed) : T{};
}

template <typename T>
T client_as(std::string_view text) {
  auto parsed = parse_client_endpoint(text);
  EXPECT_TRUE(parsed) << text << ": " << (parsed ? "" : parsed.error().message);
  if (!parsed) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*parsed)) << text;
  return std::holds_alternative<T>(*parsed) ? std::get<T>(*parsed) : T{};
}

std::string server_error(std::string_view text) {
  auto parsed = parse_server_endpoint(text);
  EXPECT_FALSE(parsed) << text << " parsed";
  return parsed ? std::string() : parsed.error().message;
}

// ---- Kinds -----------------------------------------------------------------------------------

TEST(EndpointString, TcpWithKeywords) {
  const auto e = server_as<TcpServerEndpoint>("tcp:8080:interface=127.0.0.1:backlog=100");
  EXPECT_EQ(e, (TcpServerEndpoint{false, 8080, "127.0.0.1", 100}));
}

TEST(EndpointString, TcpDefaultsAndPositionalsInTwistedsOrder) {
  EXPECT_EQ(server_as<TcpServerEndpoint>("tcp:80"), (TcpServerEndpoint{false, 80, "", SOMAXCONN}));
  EXPECT_EQ(server_as<TcpServerEndpoint>("tcp:80:10.0.0.1:7"),
            (TcpServerEndpoint{false, 80, "10.0.0.1", 7}));
  EXPECT_EQ(server_as<TcpServerEndpoint>("tcp:port=0"),
            (TcpServerEndpoint{false, 0, "", SOMAXCONN}));
}

// Twisted's 50 stalls a burst of connections; a backlog written in the string is kept as given.
TEST(EndpointString, ABacklogNotGivenIsCoreNetsAndOneGivenIsKept) {
  for (const char* text : {"tcp:80", "tcp6:80", "unix:/run/x.sock", "ssl:443"}) {
    const auto parsed = parse_server_endpoint(text);
    ASSERT_TRUE(parsed) << text;
    std::visit(
        [&](const auto& e) {
          if constexpr (requires { e.backlog; }) {
            EXPECT_EQ(e.backlog, SOMAXCONN) << text;
          } else {
            ADD_FAILURE() << text << " parsed to a kind without a backlog";
          }
        },
        *parsed);
  }
  EXPECT_EQ(server_as<TcpServerEndpoint>("tcp:80:backlog=50").backlog, 50);
  EXPECT_EQ(to_string(*parse_server_endpoint("tcp:80:backlog=50")), "tcp:80:backlog=50");
}

TEST(EndpointString, Tcp6WithEscapedColonsAndItsOwnOrder) {
  EXPECT_EQ(server_as<TcpServerEndpoint>(R"(tcp6:8080:interface=\:\:1)"),
            (TcpServerEndpoint{true, 8080, "::1", SOMAXCONN}));
  EXPECT_EQ(server_as<TcpServerEndpoint>("tcp6:443"),
            (TcpServerEndpoint{true, 443, "::", SOMAXCONN}));
  // TCP6's parser takes (port, backlog, interface).
  EXPECT_EQ(server_as<TcpServerEndpoint>(R"(tcp6:80:9:fe80\:\:1%eth0)"),
            (TcpServerEndpoint{true, 80, "fe80::1%eth0", 9}));
}

TEST(EndpointString, UnixWithModeLockfileAndBacklog) {
  EXPECT_EQ(server_as<UnixServerEndpoint>("unix:/run/x.sock:mode=660:lockfile=1:backlog=10"),
            (UnixServerEndpoint{"/run/x.sock", false, 0660, 10, true}));
  // Twisted's defaults in strings: mode 666 and a lock file.
  EXPECT_EQ(server_as<UnixServerEndpoint>("unix:/run/x.sock"),
            (UnixServerEndpoint{"/run/x.sock", false, 0666, SOMAXCONN, true}));
  EXPECT_EQ(server_as<UnixServerEndpoint>("unix:address=rel.sock:lockfile=0"),
            (UnixServerEndpoint{"rel.sock", false, 0666, SOMAXCONN, false}));
}

TEST(EndpointString, UnixAbstractNamesStartWithAnAt) {
  EXPECT_EQ(server_as<UnixServerEndpoint>("unix:@daemonkit/ctl:backlog=5"),
            (UnixServerEndpoint{"daemonkit/ctl", true, 0666, 5, false}));
  // A file whose name starts with '@' is reached through "./".
  EXPECT_EQ(server_as<UnixServerEndpoint>("unix:./@odd").abstract, false);
  EXPECT_EQ(server_error("unix:@x:mode=600"),
            "unix: mode does not apply to an abstract name (it has no file)");
  EXPECT_EQ(server_error("unix:@x:lockfile=1"),
            "unix: lockfile does not apply to an abstract name (it has no file)");
  EXPECT_EQ(server_error("unix:@"), "unix: an abstract name needs a character after '@'");
}

TEST(EndpointString, BackslashEscapesAsTwistedPinsIt) {
  EXPECT_EQ(server_as<UnixServerEndpoint>(R"(unix:foo\:bar\=baz\:qux\\)").path,
            R"(foo:bar=baz:qux\)");
  // After a field's first '=', a later '=' is part of the value.
  EXPECT_EQ(server_as<SslServerEndpoint>("ssl:443:privateKey=a=b.pem").private_key, "a=b.pem");
}

TEST(EndpointString, SslWithItsFiles) {
  const auto e = server_as<SslServerEndpoint>(
      "ssl:443:privateKey=key.pem:certKey=cert.pem:extraCertChain=chain.pem:"
      "dhParameters=dh.pem:interface=127.0.0.1:backlog=9");
  EXPECT_EQ(e.port, 443);
  EXPECT_EQ(e.private_key, "key.pem");
  EXPECT_EQ(e.cert_key, "cert.pem");
  EXPECT_EQ(e.extra_cert_chain, "chain.pem");
  EXPECT_EQ(e.dh_parameters, "dh.pem");
  EXPECT_EQ(e.interface, "127.0.0.1");
  EXPECT_EQ(e.backlog, 9);
  SslServerEndpoint plain;
  plain.port = 443;
  EXPECT_EQ(server_as<SslServerEndpoint>("ssl:443"), plain);
  EXPECT_EQ(server_as<SslServerEndpoint>("ssl:443:server.pem").private_key, "server.pem");
  EXPECT_EQ(server_error("ssl:443:sslmethod=TLSv1_METHOD"),
            "ssl: sslmethod is not supported: the TLS layer chooses the protocol versions");
  EXPECT_EQ(server_error("ssl:443:privateKey="), "ssl: privateKey is empty");
}

TEST(EndpointString, SystemdByIndexOrByName) {
  EXPECT_EQ(server_as<SystemdServerEndpoint>("systemd:domain=INET:index=0"),
            (SystemdServerEndpoint{SocketDomain::kInet, 0u, ""}));
  EXPECT_EQ(server_as<SystemdServerEndpoint>("systemd:domain=UNIX:name=foo"),
            (SystemdServerEndpoint{SocketDomain::kUnix, std::nullopt, "foo"}));
  EXPECT_EQ(server_as<SystemdServerEndpoint>("systemd:INET6:3").index, 3u);
  EXPECT_EQ(server_error("systemd:domain=inet:index=0"),
            "systemd: domain 'inet' is not INET, INET6 or UNIX");
  EXPECT_EQ(server_error("systemd:domain=INET"), "systemd: index or name is missing");
  EXPECT_EQ(server_error("systemd:domain=INET:index=0:name=web"),
            "systemd: index and name both given: a socket is chosen by one");
  EXPECT_EQ(server_error(R"(systemd:domain=UNIX:name=a\:b)"),
            "systemd: name 'a:b' cannot be in LISTEN_FDNAMES (1 to 255 bytes, no ':' and no "
            "control characters)");
  EXPECT_EQ(server_error("systemd:index=0"), "systemd: domain is missing");
}

TEST(EndpointString, ClientTcpByKeywordOrPosition) {
  EXPECT_EQ(
      client_as<TcpClientEndpoint>("tcp:host=example.com:port=80:timeout=5:bindAddress=10.0.0.2"),
      (TcpClientEndpoint{"example.com", 80, 5, "10.0.0.2"}));
  EXPECT_EQ(client_as<TcpClientEndpoint>("tcp:example.com:443"),
            (TcpClientEndpoint{"example.com", 443, 30, ""}));
  EXPECT_EQ(client_as<TcpClientEndpoint>(R"(tcp:host=\:\:1:port=80:bindAddress=\:\:1)").host,
            "::1");
  auto zero = parse_client_endpoint("tcp:host=a:port=0");
  EXPECT_THAT(zero, FailsWithMessage("tcp: port '0' is not a number from 1 to 65535"));
  EXPECT_THAT(parse_client_endpoint("tcp:port=80"), FailsWithMessage("tcp: host is missing"));
  EXPECT_THAT(parse_client_endpoint("tcp:a:80:timeout=soon"),
              FailsWithMessage("tcp: timeout 'soon' is not a number of seconds from 0 to "
                               "2147483647"));
  EXPECT_THAT(parse_client_endpoint("tcp:a:80:bindAddress=localhost"),
              FailsWithMessage("tcp: bindAddress 'localhost' is not an IP address"));
}

TEST(EndpointString, ClientUnix) {
  EXPECT_EQ(client_as<UnixClientEndpoint>("unix:path=/run/x.sock:timeout=9:checkPID=1"),
            (UnixClientEndpoint{"/run/x.sock", false, 9, true}));
  EXPECT_EQ(client_as<UnixClientEndpoint>("unix:@ctl"),
            (UnixClientEndpoint{"ctl", true, 30, false}));
  EXPECT_THAT(parse_client_endpoint("unix:@ctl:checkPID=1"),
              FailsWithMessage(HasSubstr("checkPID does not apply to an abstract name")));
  EXPECT_THAT(parse_client_endpoint("ssl:host=a:port=1"),
              FailsWithMessage("unknown endpoint type 'ssl' (known: tcp, unix)"));
}

// ---- Refusals --------------------------------------------------------------------------------

TEST(EndpointString, PortErrorsSayWhichFieldAndWhy) {
  EXPECT_EQ(server_error("tcp:x80"), "tcp: port 'x80' is not a number from 0 to 65535");
  for (const char* bad : {"tcp:65536", "tcp:-1", "tcp:+80", "tcp: 80", "tcp:8_0",
                          "tcp:", "tcp:99999999999999999999999"}) {
    EXPECT_THAT(server_error(bad), HasSubstr("is not a number from 0 to 65535")) << bad;
  }
  EXPECT_EQ(server_error("tcp:interface=127.0.0.1"), "tcp: port is missing");
  EXPECT_EQ(server_error("tcp:80:backlog=lots"),
            "tcp: backlog 'lots' is not a number from 0 to 2147483647");
  auto parsed = parse_server_endpoint("tcp:x80");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, "tcp");
  EXPECT_EQ(parsed.error().field, "port");
}

TEST(EndpointString, UnknownKeywordsAreRefused) {
  EXPECT_EQ(server_error("tcp:80:bogus=1"),
            "tcp: unknown keyword 'bogus' (known: port, interface, backlog)");
  EXPECT_EQ(server_error("unix:/x:Mode=600"),
            "unix: unknown keyword 'Mode' (known: address, mode, backlog, lockfile)");
  EXPECT_EQ(server_error("tcp:80:=1"), "tcp: unknown keyword '' (known: port, interface, backlog)");
}

TEST(EndpointString, ParametersGivenTwiceOrTooManyPositionalsAreRefused) {
  EXPECT_EQ(server_error("tcp:80:port=81"), "tcp: port is given twice");
  EXPECT_EQ(server_error("tcp:80:interface=127.0.0.1:interface=10.0.0.1"),
            "tcp: interface is given twice");
  EXPECT_EQ(server_error("tcp:80:127.0.0.1:5:extra"),
            "tcp: unexpected positional argument 'extra' (it takes 3 at most: port, interface, "
            "backlog)");
}

TEST(EndpointString, TypesAreCaseSensitiveAndMustComeFirst) {
  EXPECT_EQ(server_error("TCP:80"),
            "unknown endpoint type 'TCP' (known: tcp, tcp6, unix, ssl, systemd)");
  EXPECT_EQ(server_error(""), "the endpoint string is empty");
  EXPECT_EQ(server_error("port=80"),
            "the endpoint string starts with the keyword 'port', not with its type");
  EXPECT_EQ(server_error("tcp:80\\"),
            "the endpoint string ends in a backslash that escapes nothing");
}

TEST(EndpointString, AddressesMustBeLiteralsOfTheirFamily) {
  // Unescaped, the colons split the address: "interface=" and then a positional "" that
  // falls on interface again.
  EXPECT_EQ(server_error("tcp:80:interface=::1"), "tcp: interface is given twice");
  EXPECT_EQ(server_error(R"(tcp:80:interface=\:\:1)"),
            "tcp: interface '::1' is not an IPv4 address");
  EXPECT_EQ(server_error("tcp6:80:interface=127.0.0.1"),
            "tcp6: interface '127.0.0.1' is not an IPv6 address");
  EXPECT_EQ(server_error("tcp6:80:interface="), "tcp6: interface '' is not an IPv6 address");
  EXPECT_EQ(server_error(R"(tcp6:80:interface=fe80\:\:1%)"),
            "tcp6: interface 'fe80::1%' is not an IPv6 address");
  EXPECT_EQ(server_error("tcp:80:interface=localhost"),
            "tcp: interface 'localhost' is not an IPv4 address");
}

TEST(EndpointString, UnixPathsAndModesAreChecked) {
  EXPECT_EQ(server_error("unix:/x:mode=999"),
            "unix: mode '999' is not an octal mode from 0 to 777");
  EXPECT_EQ(server_error("unix:/x:mode=1777"),
            "unix: mode '1777' is not an octal mode from 0 to 777");
  EXPECT_EQ(server_error("unix:/x:mode="), "unix: mode '' is not an octal mode from 0 to 777");
  EXPECT_EQ(server_error("unix:/x:lockfile=yes"), "unix: lockfile 'yes' is not 0 or 1");
  EXPECT_EQ(server_error("unix:"), "unix: address is empty");
  EXPECT_EQ(server_error("unix:mode=600"), "unix: address is missing");
  EXPECT_EQ(server_error("unix:/" + std::string(107, 'a')),
            "unix: address is 108 bytes, more than a socket address holds (107)");
  EXPECT_TRUE(parse_server_endpoint("unix:/" + std::string(106, 'a')));
  EXPECT_EQ(server_error(std::string("unix:/a\0b", 9)), "unix: address contains a NUL byte");
}

TEST(EndpointString, LongValuesAreCutShortInMessages) {
  const std::string message = server_error("tcp:" + std::string(1000, '9'));
  EXPECT_LT(message.size(), 140u);
  EXPECT_THAT(message, HasSubstr("...' is not a number"));
}

// ---- Printing and the round trip --------------------------------------------------------------

TEST(EndpointString, PrintsTheCanonicalForm) {
  EXPECT_EQ(to_string(ServerEndpoint(TcpServerEndpoint{false, 8080, "127.0.0.1", 100})),
            "tcp:8080:interface=127.0.0.1:backlog=100");
  EXPECT_EQ(to_string(ServerEndpoint(TcpServerEndpoint{true, 8080, "::1", SOMAXCONN})),
            R"(tcp6:8080:interface=\:\:1)");
  EXPECT_EQ(to_string(ServerEndpoint(UnixServerEndpoint{"/a=b:c", false, 0600, SOMAXCONN, false})),
            R"(unix:/a\=b\:c:mode=600:lockfile=0)");
  EXPECT_EQ(to_string(ServerEndpoint(UnixServerEndpoint{"ctl", true, 0666, SOMAXCONN, false})),
            "unix:@ctl");
  EXPECT_EQ(to_string(ServerEndpoint(SystemdServerEndpoint{SocketDomain::kUnix, {}, "web"})),
            "systemd:domain=UNIX:name=web");
  EXPECT_EQ(to_string(ServerEndpoint(SystemdServerEndpoint{SocketDomain::kInet6, 2u, ""})),
            "systemd:domain=INET6:index=2");
  EXPECT_EQ(to_string(ClientEndpoint(TcpClientEndpoint{"example.com", 80, 30, ""})),
            "tcp:host=example.com:port=80");
  EXPECT_EQ(quote_endpoint_argument(R"(a:b=c\d)"), R"(a\:b\=c\\d)");
}

// Endpoints a parser can produce.
namespace gen_ep {

rc::Gen<std::string> text(std::size_t min, std::size_t max) {
  // Bytes the grammar cares about, and others (no NUL: no endpoint may hold one).
  return rc::gen::suchThat(
      rc::gen::container<std::string>(
          rc::gen::oneOf(rc::gen::element(':', '=', '\\', '@', '/', '.', ' ', '%'),
                         rc::gen::inRange<char>(1, 127), rc::gen::inRange<char>(-128, -1))),
      [min, max](const std::string& s) { return s.size() >= min && s.size() <= max; });
}

rc::Gen<std::string> ipv4() {
  return rc::gen::element<std::string>("", "127.0.0.1", "0.0.0.0", "10.1.2.3");
}
rc::Gen<std::string> ipv6() {
  return rc::gen::element<std::string>("::", "::1", "fe80::1%eth0", "2001:db8::7");
}

rc::Gen<ServerEndpoint> server() {
  using rc::gen::arbitrary;
  using rc::gen::inRange;
  auto backlog = inRange(0, 100000);
  auto tcp = rc::gen::apply(
      [](bool v6, std::uint16_t port, std::string v4i, std::string v6i, int b) {
        return ServerEndpoint(TcpServerEndpoint{v6, port, v6 ? v6i : v4i, b});
      },
      arbitrary<bool>(), arbitrary<std::uint16_t>(), ipv4(), ipv6(), backlog);
  auto unix_ep = rc::gen::apply(
      [](bool abstract, std::string path, int mode, int b, bool lock) {
        if (!abstract && path[0] == '@') path = "./" + path.substr(0, path.size() - 1);
        return ServerEndpoint(UnixServerEndpoint{
            path, abstract, abstract ? mode_t{0666} : mode_t(mode), b, !abstract && lock});
      },
      arbitrary<bool>(), text(3, 107), inRange(0, 01000), backlog, arbitrary<bool>());
  auto ssl = rc::gen::apply(
      [](std::uint16_t port, std::string key, std::string cert, std::string chain, std::string v4i,
         int b) {
        SslServerEndpoint e;
        e.port = port;
        e.private_key = key;
        e.cert_key = cert;
        e.extra_cert_chain = chain;
        e.interface = v4i;
        e.backlog = b;
        return ServerEndpoint(e);
      },
      arbitrary<std::uint16_t>(), text(1, 40), text(0, 40), text(0, 40), ipv4(), backlog);
  auto systemd = rc::gen::apply(
      [](int domain, bool by_index, unsigned index, std::string name) {
        SystemdServerEndpoint e{static_cast<SocketDomain>(domain), {}, {}};
        if (by_index) {
          e.index = index % 1000;
        } else {
          e.name = name;
        }
        return ServerEndpoint(e);
      },
      inRange(0, 3), arbitrary<bool>(), arbitrary<unsigned>(),
      rc::gen::element<std::string>("web", "a=b", "x\\y", "sock.0"));
  return rc::gen::oneOf(tcp, unix_ep, ssl, systemd);
}

rc::Gen<ClientEndpoint> client() {
  using rc::gen::inRange;
  auto tcp = rc::gen::apply(
      [](std::string host, int port, unsigned timeout, std::string bind) {
        return ClientEndpoint(
            TcpClientEndpoint{host, static_cast<std::uint16_t>(port), timeout % 100000, bind});
      },
      text(1, 60), inRange(1, 65536), rc::gen::arbitrary<unsigned>(),
      rc::gen::element<std::string>("", "10.0.0.1", "::1"));
  auto unix_ep = rc::gen::apply(
      [](bool abstract, std::string path, unsigned timeout, bool check) {
        if (!abstract && path[0] == '@') path = "./" + path.substr(0, path.size() - 1);
        return ClientEndpoint(
            UnixClientEndpoint{path, abstract, timeout % 100000, !abstract && check});
      },
      rc::gen::arbitrary<bool>(), text(3, 107), rc::gen::arbitrary<unsigned>(),
      rc::gen::arbitrary<bool>());
  return rc::gen::oneOf(tcp, unix_ep);
}

}  // namespace gen_ep

RC_GTEST_PROP(EndpointString, PrintedServerEndpointParsesBackToItself, ()) {
  const ServerEndpoint e = *gen_ep::server();
  const std::string text = to_string(e);
  auto again = parse_server_endpoint(text);
  RC_ASSERT(again.has_value());
  RC_ASSERT(*again == e);
}

RC_GTEST_PROP(EndpointString, PrintedClientEndpointParsesBackToItself, ()) {
  const ClientEndpoint e = *gen_ep::client();
  auto again = parse_client_endpoint(to_string(e));
  RC_ASSERT(again.has_value());
  RC_ASSERT(*again == e);
}

// From strings rather than values: whatever parses prints to a string that parses to the same
// value, and a refusal always says something.
RC_GTEST_PROP(EndpointString, AnyParsedStringRoundTrips, ()) {
  const auto kind = *rc::gen::element<std::string>("tcp", "tcp6", "unix", "ssl", "systemd", "x");
  const auto fields = *rc::gen::container<std::vector<std::string>>(rc::gen::oneOf(
      rc::gen::element<std::string>("80", "0", "interface=127.0.0.1", R"(interface=\:\:1)",
                                    "backlog=3", "mode=600", "lockfile=0", "@abs", "/p\\:q",
                                    "domain=INET", "index=1", "name=n", "privateKey=k", "certKey=c",
                                    "host=h", "port=9", "timeout=4", "checkPID=1"),
      gen_ep::text(0, 8)));
  std::string text = kind;
  for (const auto& f : fields) text += ":" + f;
  for (const bool server : {true, false}) {
    if (server) {
      auto parsed = parse_server_endpoint(text);
      if (!parsed) {
        RC_ASSERT(!parsed.error().message.empty());
        continue;
      }
      auto again = parse_server_endpoint(to_string(*parsed));
      RC_ASSERT(again.has_value());
      RC_ASSERT(*again == *parsed);
    } else {
      auto parsed = parse_client_endpoint(text);
      if (!parsed) {
        RC_ASSERT(!parsed.error().message.empty());
        continue;
      }
      auto again = parse_client_endpoint(to_string(*parsed));
      RC_ASSERT(again.has_value());
      RC_ASSERT(*again == *parsed);
    }
  }
}

}  // namespace
}  // namespace daemonkit::core
