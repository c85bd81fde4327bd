// The one place MockSyscalls' vtable, mocked bodies and strictness wrappers are compiled (see
// the extern templates at the end of the header).
#include "daemonkit/fake/mock_syscalls.h"

namespace daemonkit::fake {

MockSyscalls::MockSyscalls() = default;
MockSyscalls::~MockSyscalls() = default;

}  // namespace daemonkit::fake

template class testing::StrictMock<daemonkit::fake::MockSyscalls>;
template class testing::NiceMock<daemonkit::fake::MockSyscalls>;
template class testing::NaggyMock<daemonkit::fake::MockSyscalls>;
