#include "daemonkit/core/status/status_codec.h"

#include <fmt/format.h>

#include "daemonkit/core/status/status_message.h"

namespace daemonkit::core {

std::string encode_ready() { return "0"; }

std::string encode_failure(std::string_view message) {
  return "1 " + sanitize_message(message, kMaxStatusMessageBytes);
}

std::string describe(StatusProtocolError kind) {
  switch (kind) {
    case StatusProtocolError::kEmpty:
      return "the status pipe closed before any byte was written";
    case StatusProtocolError::kUnknownTag:
      return "the first byte is neither '0' (ready) nor '1' (failed)";
    case StatusProtocolError::kMissingSeparator:
      return "the failure tag '1' is not followed by a space";
    case StatusProtocolError::kTruncatedFailure:
      return "the report ends right after the failure tag '1'";
    case StatusProtocolError::kBytesAfterReady:
      return "bytes follow the ready byte '0'";
    case StatusProtocolError::kTooLong:
      return fmt::format("the report is longer than {} bytes", kMaxStatusBytes);
  }
  return "unknown status protocol error";
}

StatusDecodeResult StatusDecoder::check_prefix() {
  // Every rule looks at the first two bytes or the length only, and they are checked in the
  // order of the byte that breaks them (byte 0, byte 1, byte 101). So the verdict is the
  // earliest violation in the stream, which a chunk boundary cannot move: "00" followed by
  // 200 more bytes is kBytesAfterReady whether it arrives whole or a byte at a time.
  const auto reject = [this](StatusProtocolError kind) -> StatusDecodeResult {
    error_ = ProtocolError{kind};
    return *error_;
  };
  if (buffer_.empty()) return NeedMore{};
  if (buffer_[0] == '0') {
    if (buffer_.size() > 1) return reject(StatusProtocolError::kBytesAfterReady);
  } else if (buffer_[0] == '1') {
    if (buffer_.size() > 1 && buffer_[1] != ' ') {
      return reject(StatusProtocolError::kMissingSeparator);
    }
  } else {
    return reject(StatusProtocolError::kUnknownTag);
  }
  if (buffer_.size() > kMaxStatusBytes) return reject(StatusProtocolError::kTooLong);
  return NeedMore{};
}

StatusDecodeResult StatusDecoder::feed(std::string_view bytes) {
  if (error_) return *error_;
  // Never hold more than one byte past the limit: that byte is enough to reject, and a
  // hostile writer cannot make the parent buffer without bound.
  const std::size_t room = kMaxStatusBytes + 1 - buffer_.size();
  buffer_.append(bytes.substr(0, room));
  return check_prefix();
}

StatusDecodeResult StatusDecoder::finish() {
  if (error_) return *error_;
  if (auto verdict = check_prefix(); std::holds_alternative<ProtocolError>(verdict)) {
    return verdict;
  }
  if (buffer_.empty()) {
    error_ = ProtocolError{StatusProtocolError::kEmpty};
    return *error_;
  }
  if (buffer_[0] == '0') return Ready{};
  if (buffer_.size() < 2) {
    error_ = ProtocolError{StatusProtocolError::kTruncatedFailure};
    return *error_;
  }
  // The daemon sanitised already; doing it again here is what makes it safe to print
  // whatever a compromised or buggy writer sent.
  return Failed{sanitize_message(std::string_view(buffer_).substr(2), kMaxStatusMessageBytes)};
}

StatusDecodeResult decode_status(std::string_view payload) {
  StatusDecoder decoder;
  if (auto verdict = decoder.feed(payload); std::holds_alternative<ProtocolError>(verdict)) {
    return verdict;
  }
  return decoder.finish();
}

}  // namespace daemonkit::core
