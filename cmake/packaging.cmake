# The Debian packages (`make deb`, CPack's DEB generator):
#   tessera          the binary, tessera(1), /etc/tessera/tessera.conf, the
#                    systemd unit, maintainer scripts (a system user)
#   libtessera-dev   headers, static libraries, CMake and pkg-config files
# Configure with -DCMAKE_INSTALL_PREFIX=/usr so that the libraries land in
# the multiarch directory.

# tessera(1), generated from the binary's own --help.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(TESSERA_MAN ${PROJECT_BINARY_DIR}/packaging/tessera.1)
add_custom_command(OUTPUT ${TESSERA_MAN}.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/packaging
  COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/scripts/make-manpage.py $<TARGET_FILE:tessera>
          ${PROJECT_VERSION} > ${TESSERA_MAN}
  COMMAND gzip -9nf ${TESSERA_MAN}
  DEPENDS tessera ${PROJECT_SOURCE_DIR}/scripts/make-manpage.py
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} VERBATIM)

# /usr/share/doc/<package>/changelog.gz (a native package's changelog, in
# Debian's format; the project's own history is CHANGELOG.md beside it).
string(TIMESTAMP TESSERA_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(TESSERA_MAINTAINER "tessera maintainers <tessera@example.org>" CACHE STRING
    "Maintainer field of the Debian packages (set it to the packager's address)")
foreach(pkg tessera libtessera-dev)
  file(WRITE ${PROJECT_BINARY_DIR}/packaging/${pkg}/changelog
       "${pkg} (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
       "  * Release ${PROJECT_VERSION}; see CHANGELOG.md.gz beside this file.\n\n"
       " -- ${TESSERA_MAINTAINER}  ${TESSERA_DEB_DATE}\n")
endforeach()
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/tessera/changelog.gz
                          ${PROJECT_BINARY_DIR}/packaging/libtessera-dev/changelog.gz
                          ${PROJECT_BINARY_DIR}/packaging/CHANGELOG.md.gz
  COMMAND gzip -9nkf ${PROJECT_BINARY_DIR}/packaging/tessera/changelog
  COMMAND gzip -9nkf ${PROJECT_BINARY_DIR}/packaging/libtessera-dev/changelog
  COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/CHANGELOG.md > ${PROJECT_BINARY_DIR}/packaging/CHANGELOG.md.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/CHANGELOG.md VERBATIM)
add_custom_target(tessera_package_files ALL
  DEPENDS ${TESSERA_MAN}.gz ${PROJECT_BINARY_DIR}/packaging/tessera/changelog.gz
          ${PROJECT_BINARY_DIR}/packaging/libtessera-dev/changelog.gz
          ${PROJECT_BINARY_DIR}/packaging/CHANGELOG.md.gz)

install(TARGETS tessera RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(FILES ${TESSERA_MAN}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
install(FILES packaging/tessera.conf DESTINATION /etc/tessera COMPONENT runtime
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES packaging/tessera.service DESTINATION /lib/systemd/system COMPONENT runtime)
install(FILES packaging/debian/copyright ${PROJECT_BINARY_DIR}/packaging/tessera/changelog.gz
              ${PROJECT_BINARY_DIR}/packaging/CHANGELOG.md.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/tessera COMPONENT runtime)
install(FILES docs/configuration.md docs/cli.md docs/http.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/tessera COMPONENT runtime)
install(FILES packaging/debian/copyright ${PROJECT_BINARY_DIR}/packaging/libtessera-dev/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libtessera-dev COMPONENT dev)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tessera)
set(CPACK_PACKAGE_VENDOR "The tessera authors")
set(CPACK_PACKAGE_CONTACT "${TESSERA_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# CPack's own default summary, on purpose: CPackDeb then leaves each
# package's description alone, whose first line is that package's synopsis.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_NAME} built using CMake")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TESSERA_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME tessera)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser")
# First line: the synopsis; the rest: the extended description (lines < 80).
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "session lifecycle authority: cookie sessions, JWTs, refresh tokens
tessera issues, validates, renews, rotates and revokes login sessions:
cookie sessions for browsers, and short JWT access tokens with rotating
refresh tokens for APIs, with replay detection and log-out-everywhere
epochs, on SQLite or PostgreSQL. This package holds the authority server
and its operator commands, with a hardened systemd unit.")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/conffiles "/etc/tessera/tessera.conf\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libtessera-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libssl-dev (>= 3.0), libsqlite3-dev, libboost1.81-dev, libboost-json1.81-dev, libboost-url1.81-dev, libfmt-dev, libpq-dev, libhiredis-dev, pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION "session lifecycle engine - development files
The tessera engine as C++23 static libraries: tessera::core (keys, JOSE),
tessera::sessions (the engine, memory and SQLite stores), tessera::postgres,
tessera::redis, tessera::events (webhooks), tessera::verify and
tessera::verify_http (resource-side verification), with CMake (find_package(tessera)) and pkg-config files.")
include(CPack)
