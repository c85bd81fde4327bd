// Fuzz target for endpoint strings, which come from the user's command line and configuration.
// Whatever the bytes: no crash; a refusal says something, in a message of bounded size that
// names its kind when it has one; and whatever parses, as a server or as a client endpoint,
// prints to a string that parses back to the same value, and prints the same again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemonkit/core/app/endpoint_string.h"
#include "fuzz_check.h"

namespace {

using namespace daemonkit::core;

template <typename Parse>
void check(std::string_view text, Parse parse) {
  const auto parsed = parse(text);
  if (!parsed) {
    const EndpointError& e = parsed.error();
    FUZZ_CHECK(!e.message.empty());
    // Values are cut short in messages, so no input makes a message grow with it.
    FUZZ_CHECK(e.message.size() <= 400);
    if (!e.kind.empty()) FUZZ_CHECK(e.message.rfind(e.kind + ": ", 0) == 0);
    return;
  }
  const std::string printed = to_string(*parsed);
  const auto again = parse(printed);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *parsed);
  FUZZ_CHECK(to_string(*again) == printed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(text, [](std::string_view t) { return parse_server_endpoint(t); });
  check(text, [](std::string_view t) { return parse_client_endpoint(t); });
  return 0;
}
