# Installs headers, libraries, the CMake package and the pkg-config files. Two export sets, so
# that what a user links decides what must be found: daemonkitTargets (daemonkit::sys, ::core and
# its areas) needs fmt, tl-expected and OpenSSL 3; daemonkitFakeTargets (daemonkit::fake, the `fake`
# component) adds GoogleTest, which only projects testing on the fake kernel need.
include(CMakePackageConfigHelpers)

set(DAEMONKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/daemonkit)

get_property(core_areas GLOBAL PROPERTY DAEMONKIT_CORE_AREAS)
list(TRANSFORM core_areas PREPEND daemonkit_core_ OUTPUT_VARIABLE core_area_targets)

install(TARGETS daemonkit_sys ${core_area_targets} daemonkit_core
        EXPORT daemonkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
list(TRANSFORM core_areas PREPEND core/ OUTPUT_VARIABLE core_area_dirs)
foreach(component sys ${core_area_dirs})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${component}/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(EXPORT daemonkitTargets NAMESPACE daemonkit:: DESTINATION ${DAEMONKIT_CMAKE_DIR})

if(TARGET daemonkit_fake)
  install(TARGETS daemonkit_fake
          EXPORT daemonkitFakeTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/fake/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT daemonkitFakeTargets NAMESPACE daemonkit:: DESTINATION ${DAEMONKIT_CMAKE_DIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/daemonkitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/daemonkitConfig.cmake
                              INSTALL_DESTINATION ${DAEMONKIT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/daemonkitConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/daemonkitConfig.cmake
              ${PROJECT_BINARY_DIR}/daemonkitConfigVersion.cmake
        DESTINATION ${DAEMONKIT_CMAKE_DIR})

# Static archives in link order: each before the ones it uses. Areas are recorded bottom-up
# (an area after every area it uses), so the reversed list is that order.
set(DAEMONKIT_PC_LIBS "")
set(link_order ${core_areas})
list(REVERSE link_order)
foreach(area IN LISTS link_order)
  string(APPEND DAEMONKIT_PC_LIBS " -ldaemonkit_core_${area}")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/daemonkit.pc.in ${PROJECT_BINARY_DIR}/daemonkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/daemonkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(TARGET daemonkit_fake)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/daemonkit-fake.pc.in
                 ${PROJECT_BINARY_DIR}/daemonkit-fake.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/daemonkit-fake.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
