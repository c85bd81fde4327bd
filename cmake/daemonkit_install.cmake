# Installs headers, libraries, the CMake package (daemonkit::sys, ::core, ::fake) and daemonkit.pc.
include(CMakePackageConfigHelpers)

set(DAEMONKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/daemonkit)

get_property(core_areas GLOBAL PROPERTY DAEMONKIT_CORE_AREAS)
list(TRANSFORM core_areas PREPEND daemonkit_core_ OUTPUT_VARIABLE core_area_targets)

install(TARGETS daemonkit_sys ${core_area_targets} daemonkit_core daemonkit_fake
        EXPORT daemonkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
list(TRANSFORM core_areas PREPEND core/ OUTPUT_VARIABLE core_area_dirs)
foreach(component sys ${core_area_dirs} fake)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${component}/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()

install(EXPORT daemonkitTargets NAMESPACE daemonkit:: DESTINATION ${DAEMONKIT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/daemonkitConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/daemonkitConfig.cmake
                              INSTALL_DESTINATION ${DAEMONKIT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/daemonkitConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/daemonkitConfig.cmake
              ${PROJECT_BINARY_DIR}/daemonkitConfigVersion.cmake
        DESTINATION ${DAEMONKIT_CMAKE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/daemonkit.pc.in ${PROJECT_BINARY_DIR}/daemonkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/daemonkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
