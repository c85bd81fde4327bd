// Making a status message safe to carry across the status pipe and to print on a terminal.
// The daemon sanitises before it sends and the waiting parent sanitises again after it
// receives, because the parent must never trust bytes that came from another process.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace daemonkit::core {

// Returns `raw` with every byte that could disturb a reader replaced by a four-character
// escape `\xNN` (two lowercase hex digits, as Python's backslashreplace writes them):
//   - C0 control bytes 0x00-0x1F and DEL 0x7F;
//   - every byte that is not part of a well-formed UTF-8 sequence: stray continuation bytes,
//     overlong forms, UTF-16 surrogates, code points above U+10FFFF, truncated sequences;
//   - the two bytes of each C1 control character U+0080-U+009F. They are valid UTF-8, but a
//     terminal may act on them (U+009B is CSI, the start of an escape sequence), so passing
//     them would defeat the point of escaping ESC;
//   - each Unicode bidirectional formatting character (U+202A-U+202E, U+2066-U+2069, U+200E,
//     U+200F, U+061C), as an eight-character escape `\u{202E}` (uppercase hex). They are valid
//     UTF-8 and print nothing themselves, but reorder what follows: a message could show the
//     reader different words from the ones it holds.
// Everything else, all other valid UTF-8 included, passes unchanged.
//
// A backslash is not escaped. The result is a diagnostic for a human, never decoded back to
// bytes, so the only ambiguity (a message that literally says `\x1b` reads like an escaped
// ESC) costs nothing; and leaving backslashes alone makes this function idempotent:
// sanitising an already sanitised message returns it unchanged. That property is what lets
// the parent sanitise again without mangling what an honest daemon sent.
//
// The result is at most `max_bytes` long. It is cut between units, never inside an escape
// or a UTF-8 sequence, so a truncated message is still valid UTF-8 with whole escapes.
[[nodiscard]] std::string sanitize_message(std::string_view raw, std::size_t max_bytes);

}  // namespace daemonkit::core
