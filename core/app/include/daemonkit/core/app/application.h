// Application: what a daemon runs (Twisted's Application): a name, the user and group to run as,
// the process name `ps` shows, and the top service, a MultiService named after the application.
// The runner (later) starts the top service, sheds privileges to user/group and stops it at
// shutdown.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "daemonkit/core/app/multi_service.h"
#include "daemonkit/core/daemon/privileges.h"

namespace daemonkit::core {

class Application {
 public:
  // `user` and `group` by name or number, as --uid/--gid are given; unset: leave them alone
  // (Twisted's None). They are resolved when privileges are shed, not here.
  explicit Application(std::string name, std::optional<std::string> user = {},
                       std::optional<std::string> group = {});

  [[nodiscard]] const std::string& name() const { return service_->name(); }
  [[nodiscard]] const std::optional<std::string>& user() const { return user_; }
  [[nodiscard]] const std::optional<std::string>& group() const { return group_; }
  // The request resolve_privileges takes, with command-line options winning over these.
  [[nodiscard]] PrivilegeRequest privileges() const { return {user_, group_, false}; }

  // The name `ps` should show; unset leaves the process's own (Twisted's processName = None).
  [[nodiscard]] const std::optional<std::string>& process_name() const { return process_name_; }
  void set_process_name(std::optional<std::string> name) { process_name_ = std::move(name); }

  // The top service: add the daemon's services here. Shared so that it can be held in the
  // service tree's own terms, but it is the application's and never has a parent.
  [[nodiscard]] MultiService& service() { return *service_; }
  [[nodiscard]] const std::shared_ptr<MultiService>& service_ptr() const { return service_; }

 private:
  std::shared_ptr<MultiService> service_;
  std::optional<std::string> user_;
  std::optional<std::string> group_;
  std::optional<std::string> process_name_;
};

}  // namespace daemonkit::core
