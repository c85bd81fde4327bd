// The one place MockSyscalls' vtable, mocked bodies and strictness wrappers are compiled (see
// the extern templates in the header).
#include "daemonkit/fake/mock_syscalls.h"

template class daemonkit::fake::BasicMockSyscalls<0>;

template class testing::StrictMock<daemonkit::fake::MockSyscalls>;
template class testing::NiceMock<daemonkit::fake::MockSyscalls>;
template class testing::NaggyMock<daemonkit::fake::MockSyscalls>;
