#include "daemonkit/core/app/endpoint_string.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

// sun_path holds 108 bytes: a path needs its NUL, an abstract name its leading NUL.
constexpr std::size_t kMaxUnixPathBytes = sizeof(sockaddr_un{}.sun_path) - 1;
// systemd's limit on a FileDescriptorName=.
constexpr std::size_t kMaxFdNameBytes = 255;
constexpr std::uint64_t kMaxInt = INT_MAX;
constexpr int kDefaultBacklog = kDefaultEndpointBacklog;
constexpr mode_t kDefaultUnixMode = 0666;
constexpr unsigned kDefaultTimeout = 30;

struct Field {
  bool keyword = false;
  std::string key;
  std::string value;
};

// A value as a message shows it: quoted, and cut short so that a huge field cannot make a huge
// message (the edge that prints it makes it safe for a terminal).
std::string shown(std::string_view value) {
  constexpr std::size_t kMax = 64;
  if (value.size() <= kMax) return fmt::format("'{}'", value);
  return fmt::format("'{}...'", value.substr(0, kMax));
}

tl::unexpected<EndpointError> refuse(std::string_view kind, std::string_view field,
                                     std::string message) {
  EndpointError error{std::string(kind), std::string(field), {}};
  error.message = kind.empty() ? std::move(message) : fmt::format("{}: {}", kind, message);
  return tl::unexpected<EndpointError>(std::move(error));
}

// Twisted's _tokenize and _parse in one pass. After a field's first '=' only ':' is an
// operator; a backslash takes the next byte as it is.
EndpointResult<std::vector<Field>> split_fields(std::string_view text) {
  std::vector<Field> fields;
  std::vector<std::string> parts;
  std::string current;
  bool after_equals = false;
  auto end_field = [&] {
    parts.push_back(std::move(current));
    current.clear();
    Field f;
    if (parts.size() == 1) {
      f.value = std::move(parts[0]);
    } else {
      f.keyword = true;
      f.key = std::move(parts[0]);
      f.value = std::move(parts[1]);
    }
    fields.push_back(std::move(f));
    parts.clear();
    after_equals = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ':') {
      end_field();
    } else if (c == '=' && !after_equals) {
      parts.push_back(std::move(current));
      current.clear();
      after_equals = true;
    } else if (c == '\\') {
      if (i + 1 == text.size()) {
        return refuse("", "", "the endpoint string ends in a backslash that escapes nothing");
      }
      current += text[++i];
    } else {
      current += c;
    }
  }
  end_field();
  return fields;
}

// The kind's parameters by name, filled from positional fields in order and from keywords.
class Arguments {
 public:
  Arguments(std::string_view kind, std::vector<std::string_view> names)
      : kind_(kind), names_(std::move(names)), values_(names_.size()) {}

  EndpointResult<void> bind(const std::vector<Field>& fields) {
    std::size_t next_positional = 0;
    for (std::size_t i = 1; i < fields.size(); ++i) {
      const Field& f = fields[i];
      std::size_t index = 0;
      if (!f.keyword) {
        if (next_positional == names_.size()) {
          return refuse(kind_, "",
                        fmt::format("unexpected positional argument {} (it takes {} at most: {})",
                                    shown(f.value), names_.size(), fmt::join(names_, ", ")));
        }
        index = next_positional++;
      } else {
        const auto it = std::find(names_.begin(), names_.end(), f.key);
        if (it == names_.end()) {
          return refuse(
              kind_, f.key,
              fmt::format("unknown keyword {} (known: {})", shown(f.key), fmt::join(names_, ", ")));
        }
        index = static_cast<std::size_t>(it - names_.begin());
      }
      if (values_[index]) {
        return refuse(kind_, names_[index], fmt::format("{} is given twice", names_[index]));
      }
      values_[index] = f.value;
    }
    return {};
  }

  [[nodiscard]] const std::optional<std::string>& operator[](std::string_view name) const {
    const auto it = std::find(names_.begin(), names_.end(), name);
    return values_[static_cast<std::size_t>(it - names_.begin())];
  }
  [[nodiscard]] std::string_view kind() const { return kind_; }

 private:
  std::string_view kind_;
  std::vector<std::string_view> names_;
  std::vector<std::optional<std::string>> values_;
};

// Decimal digits only: no sign, no space, no '_' (Python's int() takes all three).
EndpointResult<std::uint64_t> number(std::string_view kind, std::string_view field,
                                     std::string_view text, std::uint64_t min, std::uint64_t max,
                                     std::string_view unit = "a number") {
  std::uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 19;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!ok || value < min || value > max) {
    return refuse(kind, field,
                  fmt::format("{} {} is not {} from {} to {}", field, shown(text), unit, min, max));
  }
  return value;
}

EndpointResult<std::string> required(const Arguments& args, std::string_view field) {
  const auto& value = args[field];
  if (!value) return refuse(args.kind(), field, fmt::format("{} is missing", field));
  return *value;
}

EndpointResult<std::uint16_t> port(const Arguments& args, std::string_view field,
                                   std::uint64_t min) {
  auto text = required(args, field);
  if (!text) return tl::unexpected(text.error());
  auto n = number(args.kind(), field, *text, min, 65535);
  if (!n) return tl::unexpected(n.error());
  return static_cast<std::uint16_t>(*n);
}

EndpointResult<int> backlog(const Arguments& args) {
  const auto& text = args["backlog"];
  if (!text) return kDefaultBacklog;
  auto n = number(args.kind(), "backlog", *text, 0, kMaxInt);
  if (!n) return tl::unexpected(n.error());
  return static_cast<int>(*n);
}

EndpointResult<unsigned> seconds(const Arguments& args, std::string_view field) {
  const auto& text = args[field];
  if (!text) return kDefaultTimeout;
  auto n = number(args.kind(), field, *text, 0, kMaxInt, "a number of seconds");
  if (!n) return tl::unexpected(n.error());
  return static_cast<unsigned>(*n);
}

EndpointResult<bool> flag(const Arguments& args, std::string_view field, bool fallback) {
  const auto& text = args[field];
  if (!text) return fallback;
  if (*text == "0") return false;
  if (*text == "1") return true;
  return refuse(args.kind(), field, fmt::format("{} {} is not 0 or 1", field, shown(*text)));
}

bool is_ipv4(const std::string& text) {
  in_addr a{};
  return inet_pton(AF_INET, text.c_str(), &a) == 1;
}

// An IPv6 literal, with an optional %scope (an interface name or number).
bool is_ipv6(const std::string& text) {
  const auto percent = text.find('%');
  const std::string address = text.substr(0, percent);
  in6_addr a{};
  if (address.find('\0') != std::string::npos || inet_pton(AF_INET6, address.c_str(), &a) != 1) {
    return false;
  }
  if (percent == std::string::npos) return true;
  const std::string_view scope = std::string_view(text).substr(percent + 1);
  return !scope.empty() && scope.size() < 16 && std::all_of(scope.begin(), scope.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-' || c == '.';
  });
}

EndpointResult<void> address(const Arguments& args, std::string_view field, const std::string& text,
                             bool v4, bool v6) {
  if (text.find('\0') == std::string::npos && ((v4 && is_ipv4(text)) || (v6 && is_ipv6(text)))) {
    return {};
  }
  const char* what = v4 && v6 ? "an IP address" : v4 ? "an IPv4 address" : "an IPv6 address";
  return refuse(args.kind(), field, fmt::format("{} {} is not {}", field, shown(text), what));
}

// A file name given to a TLS or UNIX endpoint: not empty, no NUL (the kernel could not take it).
EndpointResult<std::string> file_name(const Arguments& args, std::string_view field,
                                      std::string value) {
  if (value.empty()) return refuse(args.kind(), field, fmt::format("{} is empty", field));
  if (value.find('\0') != std::string::npos) {
    return refuse(args.kind(), field, fmt::format("{} contains a NUL byte", field));
  }
  return value;
}

struct UnixAddress {
  std::string path;
  bool abstract = false;
};

// A leading '@' names an abstract socket (what ss(8) and systemd's ListenStream= show for one);
// a file whose name starts with '@' is written "./@name".
EndpointResult<UnixAddress> unix_address(const Arguments& args, std::string_view field) {
  auto text = required(args, field);
  if (!text) return tl::unexpected(text.error());
  UnixAddress a;
  a.abstract = !text->empty() && (*text)[0] == '@';
  a.path = a.abstract ? text->substr(1) : *text;
  if (a.path.empty()) {
    return refuse(args.kind(), field,
                  a.abstract ? std::string("an abstract name needs a character after '@'")
                             : fmt::format("{} is empty", field));
  }
  if (a.path.find('\0') != std::string::npos) {
    return refuse(args.kind(), field, fmt::format("{} contains a NUL byte", field));
  }
  if (a.path.size() > kMaxUnixPathBytes) {
    return refuse(args.kind(), field,
                  fmt::format("{} is {} bytes, more than a socket address holds ({})", field,
                              a.path.size(), kMaxUnixPathBytes));
  }
  return a;
}

template <typename T>
using Parsed = EndpointResult<T>;

// Propagates the error of an EndpointResult from inside a parser returning another one.
#define DK_TRY(var, expr)                                                    \
  auto var##_result = (expr);                                                \
  if (!var##_result) return tl::unexpected(std::move(var##_result.error())); \
  auto var = std::move(*var##_result)

#define DK_CHECK(expr)                                                               \
  do {                                                                               \
    auto dk_check_result = (expr);                                                   \
    if (!dk_check_result) return tl::unexpected(std::move(dk_check_result.error())); \
  } while (false)

Parsed<ServerEndpoint> tcp_server(const std::vector<Field>& fields, bool ipv6) {
  // Twisted's parameter orders: _parseTCP(port, interface, backlog) and
  // TCP6ServerEndpoint's parser (port, backlog, interface).
  Arguments args(ipv6 ? "tcp6" : "tcp",
                 ipv6 ? std::vector<std::string_view>{"port", "backlog", "interface"}
                      : std::vector<std::string_view>{"port", "interface", "backlog"});
  DK_CHECK(args.bind(fields));
  TcpServerEndpoint e;
  e.ipv6 = ipv6;
  DK_TRY(p, port(args, "port", 0));
  e.port = p;
  DK_TRY(b, backlog(args));
  e.backlog = b;
  e.interface = args["interface"].value_or(ipv6 ? "::" : "");
  if (ipv6 || !e.interface.empty()) DK_CHECK(address(args, "interface", e.interface, !ipv6, ipv6));
  return e;
}

Parsed<ServerEndpoint> unix_server(const std::vector<Field>& fields) {
  Arguments args("unix", {"address", "mode", "backlog", "lockfile"});
  DK_CHECK(args.bind(fields));
  DK_TRY(a, unix_address(args, "address"));
  UnixServerEndpoint e;
  e.path = std::move(a.path);
  e.abstract = a.abstract;
  DK_TRY(b, backlog(args));
  e.backlog = b;
  if (e.abstract) {
    // No file: nothing to give a mode to, nothing a lock file could guard.
    for (std::string_view field : {"mode", "lockfile"}) {
      if (args[field]) {
        return refuse("unix", field,
                      fmt::format("{} does not apply to an abstract name (it has no file)", field));
      }
    }
    e.lockfile = false;
    return e;
  }
  if (const auto& mode = args["mode"]) {
    const bool octal =
        !mode->empty() && mode->size() <= 4 &&
        std::all_of(mode->begin(), mode->end(), [](char c) { return c >= '0' && c <= '7'; });
    const unsigned long value = octal ? std::stoul(*mode, nullptr, 8) : 01000;
    if (value > 0777) {
      return refuse("unix", "mode",
                    fmt::format("mode {} is not an octal mode from 0 to 777", shown(*mode)));
    }
    e.mode = static_cast<mode_t>(value);
  }
  DK_TRY(l, flag(args, "lockfile", true));
  e.lockfile = l;
  return e;
}

Parsed<ServerEndpoint> ssl_server(const std::vector<Field>& fields) {
  // Twisted's _parseSSL order; sslmethod keeps its place so that positionals line up.
  Arguments args("ssl", {"port", "privateKey", "certKey", "sslmethod", "interface", "backlog",
                         "extraCertChain", "dhParameters"});
  DK_CHECK(args.bind(fields));
  if (args["sslmethod"]) {
    return refuse("ssl", "sslmethod",
                  "sslmethod is not supported: the TLS layer chooses the protocol versions");
  }
  SslServerEndpoint e;
  DK_TRY(p, port(args, "port", 0));
  e.port = p;
  DK_TRY(b, backlog(args));
  e.backlog = b;
  if (const auto& v = args["privateKey"]) {
    DK_TRY(f, file_name(args, "privateKey", *v));
    e.private_key = std::move(f);
  }
  const std::pair<std::string_view, std::string SslServerEndpoint::*> files[] = {
      {"certKey", &SslServerEndpoint::cert_key},
      {"extraCertChain", &SslServerEndpoint::extra_cert_chain},
      {"dhParameters", &SslServerEndpoint::dh_parameters}};
  for (const auto& [field, member] : files) {
    if (const auto& v = args[field]) {
      DK_TRY(f, file_name(args, field, *v));
      e.*member = std::move(f);
    }
  }
  e.interface = args["interface"].value_or("");
  if (!e.interface.empty()) DK_CHECK(address(args, "interface", e.interface, true, false));
  return e;
}

Parsed<ServerEndpoint> systemd_server(const std::vector<Field>& fields) {
  Arguments args("systemd", {"domain", "index", "name"});
  DK_CHECK(args.bind(fields));
  SystemdServerEndpoint e;
  DK_TRY(domain, required(args, "domain"));
  if (domain == "INET") {
    e.domain = SocketDomain::kInet;
  } else if (domain == "INET6") {
    e.domain = SocketDomain::kInet6;
  } else if (domain == "UNIX") {
    e.domain = SocketDomain::kUnix;
  } else {
    return refuse("systemd", "domain",
                  fmt::format("domain {} is not INET, INET6 or UNIX", shown(domain)));
  }
  const auto& index = args["index"];
  const auto& name = args["name"];
  if (index && name) {
    return refuse("systemd", "name", "index and name both given: a socket is chosen by one");
  }
  if (!index && !name) return refuse("systemd", "index", "index or name is missing");
  if (index) {
    DK_TRY(n, number("systemd", "index", *index, 0, kMaxInt));
    e.index = static_cast<unsigned>(n);
    return e;
  }
  // LISTEN_FDNAMES separates names with ':', and systemd takes no control characters in them.
  const bool fits = !name->empty() && name->size() <= kMaxFdNameBytes &&
                    std::none_of(name->begin(), name->end(), [](char c) {
                      return c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                    });
  if (!fits) {
    return refuse("systemd", "name",
                  fmt::format("name {} cannot be in LISTEN_FDNAMES (1 to {} bytes, no ':' and "
                              "no control characters)",
                              shown(*name), kMaxFdNameBytes));
  }
  e.name = *name;
  return e;
}

Parsed<ClientEndpoint> tcp_client(const std::vector<Field>& fields) {
  Arguments args("tcp", {"host", "port", "timeout", "bindAddress"});
  DK_CHECK(args.bind(fields));
  TcpClientEndpoint e;
  DK_TRY(host, required(args, "host"));
  DK_TRY(h, file_name(args, "host", host));
  e.host = std::move(h);
  DK_TRY(p, port(args, "port", 1));
  e.port = p;
  DK_TRY(t, seconds(args, "timeout"));
  e.timeout_seconds = t;
  if (const auto& bind = args["bindAddress"]) {
    DK_CHECK(address(args, "bindAddress", *bind, true, true));
    e.bind_address = *bind;
  }
  return e;
}

Parsed<ClientEndpoint> unix_client(const std::vector<Field>& fields) {
  Arguments args("unix", {"path", "timeout", "checkPID"});
  DK_CHECK(args.bind(fields));
  DK_TRY(a, unix_address(args, "path"));
  UnixClientEndpoint e;
  e.path = std::move(a.path);
  e.abstract = a.abstract;
  DK_TRY(t, seconds(args, "timeout"));
  e.timeout_seconds = t;
  DK_TRY(c, flag(args, "checkPID", false));
  if (c && e.abstract) {
    return refuse("unix", "checkPID",
                  "checkPID does not apply to an abstract name (it has no file)");
  }
  e.check_pid = c;
  return e;
}

#undef DK_TRY
#undef DK_CHECK

// The fields, and the kind as the first one; refused when there is no kind to read.
EndpointResult<std::vector<Field>> fields_with_kind(std::string_view text) {
  if (text.empty()) return refuse("", "", "the endpoint string is empty");
  auto fields = split_fields(text);
  if (!fields) return fields;
  if ((*fields)[0].keyword) {
    return refuse("", "",
                  fmt::format("the endpoint string starts with the keyword {}, not with its type",
                              shown((*fields)[0].key)));
  }
  return fields;
}

tl::unexpected<EndpointError> unknown_kind(std::string_view kind, std::string_view known) {
  return refuse("", "", fmt::format("unknown endpoint type {} (known: {})", shown(kind), known));
}

void append_keyword(std::string& out, std::string_view key, std::string_view value) {
  out += fmt::format(":{}={}", key, quote_endpoint_argument(value));
}

std::string unix_address_text(const std::string& path, bool abstract) {
  return quote_endpoint_argument(abstract ? "@" + path : path);
}

}  // namespace

EndpointResult<ServerEndpoint> parse_server_endpoint(std::string_view text) {
  auto fields = fields_with_kind(text);
  if (!fields) return tl::unexpected(std::move(fields.error()));
  const std::string& kind = (*fields)[0].value;
  if (kind == "tcp") return tcp_server(*fields, false);
  if (kind == "tcp6") return tcp_server(*fields, true);
  if (kind == "unix") return unix_server(*fields);
  if (kind == "ssl") return ssl_server(*fields);
  if (kind == "systemd") return systemd_server(*fields);
  return unknown_kind(kind, "tcp, tcp6, unix, ssl, systemd");
}

EndpointResult<ClientEndpoint> parse_client_endpoint(std::string_view text) {
  auto fields = fields_with_kind(text);
  if (!fields) return tl::unexpected(std::move(fields.error()));
  const std::string& kind = (*fields)[0].value;
  if (kind == "tcp") return tcp_client(*fields);
  if (kind == "unix") return unix_client(*fields);
  return unknown_kind(kind, "tcp, unix");
}

std::string quote_endpoint_argument(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\' || c == ':' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

std::string to_string(const ServerEndpoint& endpoint) {
  struct Printer {
    std::string operator()(const TcpServerEndpoint& e) const {
      std::string out = fmt::format("{}:{}", e.ipv6 ? "tcp6" : "tcp", e.port);
      if (e.interface != (e.ipv6 ? "::" : "")) append_keyword(out, "interface", e.interface);
      if (e.backlog != kDefaultBacklog) append_keyword(out, "backlog", std::to_string(e.backlog));
      return out;
    }
    std::string operator()(const UnixServerEndpoint& e) const {
      std::string out = "unix:" + unix_address_text(e.path, e.abstract);
      if (!e.abstract && e.mode != kDefaultUnixMode) {
        append_keyword(out, "mode", fmt::format("{:o}", e.mode));
      }
      if (e.backlog != kDefaultBacklog) append_keyword(out, "backlog", std::to_string(e.backlog));
      if (!e.abstract && !e.lockfile) append_keyword(out, "lockfile", "0");
      return out;
    }
    std::string operator()(const SslServerEndpoint& e) const {
      std::string out = fmt::format("ssl:{}", e.port);
      if (e.private_key != "server.pem") append_keyword(out, "privateKey", e.private_key);
      if (!e.cert_key.empty()) append_keyword(out, "certKey", e.cert_key);
      if (!e.extra_cert_chain.empty()) append_keyword(out, "extraCertChain", e.extra_cert_chain);
      if (!e.dh_parameters.empty()) append_keyword(out, "dhParameters", e.dh_parameters);
      if (!e.interface.empty()) append_keyword(out, "interface", e.interface);
      if (e.backlog != kDefaultBacklog) append_keyword(out, "backlog", std::to_string(e.backlog));
      return out;
    }
    std::string operator()(const SystemdServerEndpoint& e) const {
      const char* domain = e.domain == SocketDomain::kInet    ? "INET"
                           : e.domain == SocketDomain::kInet6 ? "INET6"
                                                              : "UNIX";
      std::string out = fmt::format("systemd:domain={}", domain);
      if (e.index) {
        append_keyword(out, "index", std::to_string(*e.index));
      } else {
        append_keyword(out, "name", e.name);
      }
      return out;
    }
  };
  return std::visit(Printer{}, endpoint);
}

std::string to_string(const ClientEndpoint& endpoint) {
  struct Printer {
    std::string operator()(const TcpClientEndpoint& e) const {
      std::string out = "tcp";
      append_keyword(out, "host", e.host);
      append_keyword(out, "port", std::to_string(e.port));
      if (e.timeout_seconds != kDefaultTimeout) {
        append_keyword(out, "timeout", std::to_string(e.timeout_seconds));
      }
      if (!e.bind_address.empty()) append_keyword(out, "bindAddress", e.bind_address);
      return out;
    }
    std::string operator()(const UnixClientEndpoint& e) const {
      std::string out = "unix:" + unix_address_text(e.path, e.abstract);
      if (e.timeout_seconds != kDefaultTimeout) {
        append_keyword(out, "timeout", std::to_string(e.timeout_seconds));
      }
      if (e.check_pid) append_keyword(out, "checkPID", "1");
      return out;
    }
  };
  return std::visit(Printer{}, endpoint);
}

}  // namespace daemonkit::core
