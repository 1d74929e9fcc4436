# Install rules: headers, libraries, the CMake package (tesseraConfig.cmake,
# tesseraConfigVersion.cmake, exported targets tessera::<component>) and one
# pkg-config file per component, plus tessera.pc for all of them.
include(CMakePackageConfigHelpers)

get_property(TESSERA_COMPONENTS GLOBAL PROPERTY TESSERA_COMPONENTS)
set(TESSERA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tessera)

foreach(component IN LISTS TESSERA_COMPONENTS)
  install(TARGETS tessera_${component} EXPORT tesseraTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
          FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
          FILE_SET generated DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
endforeach()
install(EXPORT tesseraTargets NAMESPACE tessera:: DESTINATION ${TESSERA_CMAKE_DIR} COMPONENT dev)

list(JOIN TESSERA_COMPONENTS " " TESSERA_CONFIG_COMPONENTS)
configure_package_config_file(cmake/tesseraConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tesseraConfig.cmake INSTALL_DESTINATION ${TESSERA_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tesseraConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tesseraConfig.cmake ${PROJECT_BINARY_DIR}/tesseraConfigVersion.cmake
        DESTINATION ${TESSERA_CMAKE_DIR} COMPONENT dev)

# pkg-config. The libraries are static by default, so each file lists in
# Libs/Requires everything a program must link (not only in the .private
# fields, which plain `pkg-config --libs` does not read).
set(TESSERA_PC_core_REQUIRES "libcrypto >= 3.0")
set(TESSERA_PC_core_LIBS "-lboost_json -lfmt")
set(TESSERA_PC_sessions_REQUIRES "tessera-verify = ${PROJECT_VERSION}, tessera-core = ${PROJECT_VERSION}, sqlite3")
set(TESSERA_PC_sessions_LIBS "-lboost_json -lfmt")
set(TESSERA_PC_verify_REQUIRES "tessera-core = ${PROJECT_VERSION}")
set(TESSERA_PC_verify_LIBS "-lfmt")
set(TESSERA_PC_verify_http_REQUIRES "tessera-verify = ${PROJECT_VERSION}, libssl >= 3.0")
set(TESSERA_PC_verify_http_LIBS "-lboost_json -lboost_url -lfmt -pthread")
set(TESSERA_PC_events_REQUIRES "tessera-sessions = ${PROJECT_VERSION}, tessera-verify-http = ${PROJECT_VERSION}")
set(TESSERA_PC_events_LIBS "-lboost_json -lboost_url -lfmt")
set(TESSERA_PC_postgres_REQUIRES "tessera-sessions = ${PROJECT_VERSION}, libpq")
set(TESSERA_PC_postgres_LIBS "-lfmt")
set(TESSERA_PC_redis_REQUIRES "tessera-verify = ${PROJECT_VERSION}, tessera-sessions = ${PROJECT_VERSION}, hiredis")
set(TESSERA_PC_redis_LIBS "-lfmt -pthread")

# The prefix relative to the .pc file, so an installation can be moved (or
# installed with --prefix) and still resolve.
file(RELATIVE_PATH TESSERA_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" TESSERA_PC_TO_PREFIX "${TESSERA_PC_TO_PREFIX}")
set(TESSERA_PC_ALL "")
foreach(component IN LISTS TESSERA_COMPONENTS)
  string(REPLACE "_" "-" pc_name "tessera-${component}")
  set(PC_NAME ${pc_name})
  set(PC_DESCRIPTION "tessera ${component} (${PROJECT_DESCRIPTION})")
  set(PC_REQUIRES "${TESSERA_PC_${component}_REQUIRES}")
  set(PC_LIB "tessera_${component}")
  set(PC_EXTRA_LIBS "${TESSERA_PC_${component}_LIBS}")
  configure_file(cmake/tessera-component.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
  list(APPEND TESSERA_PC_ALL "${pc_name} = ${PROJECT_VERSION}")
endforeach()
list(JOIN TESSERA_PC_ALL ", " TESSERA_PC_ALL)
configure_file(cmake/tessera.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
