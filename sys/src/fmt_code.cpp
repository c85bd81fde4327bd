// fmt's compiled code (the functions format-inl.h defines), built once into daemonkit_sys.
//
// Why not libfmt.so: the daemonkit binary must load no shared C++ runtime (cli/CMakeLists.txt),
// and Debian ships no libfmt.a. Why not FMT_HEADER_ONLY in every file, as before: it compiled
// all of format-inl.h into each of about 50 library files, 4-5 s each at -O2, half of the
// libraries' build time in every CI stage. Here it is compiled once, and the other files see
// only fmt's declarations.
#include <fmt/format-inl.h>

namespace fmt {
inline namespace v9 {
namespace detail {

// The function templates format-inl.h defines and our code calls, instantiated for char: the
// other files only declare them.
template FMT_API void vformat_to(buffer<char>&, string_view, basic_format_args<format_context>,
                                 locale_ref);
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;
template FMT_API locale_ref::locale_ref(const std::locale& loc);

}  // namespace detail
}  // namespace v9
}  // namespace fmt
