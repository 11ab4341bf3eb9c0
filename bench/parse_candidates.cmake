# bench/parse_candidates.cmake -- build of the JSON parser benchmark.
#
# Owns: the target `bench_parse` (bench_parse.c, plus parse_simdjson.cpp when
# simdjson is available), the discovery of the candidate parsers (pkg-config:
# libcjson, jansson, yajl, json-c; header-only jsmn; simdjson CMake config) and
# the BENCH_HAVE_<NAME>=1 definitions that switch candidates on.
#
# Must never: create targets other than bench_parse, change global state that
# the engine build relies on (CMAKE_<LANG>_FLAGS, add_compile_options,
# include_directories, link_libraries), or fail the configure step because an
# optional parser is missing -- a missing candidate is reported and left out.
#
# Meant to be include()d from bench/CMakeLists.txt.  Options:
#   VIGIL_BENCH_SIMDJSON  build the simdjson candidate if found (default ON)
#   VIGIL_BENCH_WERROR    compile bench_parse with -Werror (default ON)
include_guard(GLOBAL)

option(VIGIL_BENCH_SIMDJSON "bench_parse: include the simdjson candidate when found" ON)
option(VIGIL_BENCH_WERROR "bench_parse: treat compiler warnings as errors" ON)

add_executable(bench_parse "${CMAKE_CURRENT_LIST_DIR}/bench_parse.c")
set_target_properties(bench_parse PROPERTIES
  C_STANDARD 11
  C_STANDARD_REQUIRED ON
  C_EXTENSIONS OFF)

set(_vigil_bench_have "")
set(_vigil_bench_missing "")

# Libraries with a pkg-config file: <define suffix> <pkg-config module>.
find_package(PkgConfig QUIET)
foreach(_vigil_bench_pair IN ITEMS "CJSON:libcjson" "JANSSON:jansson" "YAJL:yajl" "JSONC:json-c")
  string(REPLACE ":" ";" _vigil_bench_pair "${_vigil_bench_pair}")
  list(GET _vigil_bench_pair 0 _vigil_bench_id)
  list(GET _vigil_bench_pair 1 _vigil_bench_module)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(VIGIL_BENCH_${_vigil_bench_id} QUIET IMPORTED_TARGET "${_vigil_bench_module}")
  endif()
  if(VIGIL_BENCH_${_vigil_bench_id}_FOUND)
    target_link_libraries(bench_parse PRIVATE "PkgConfig::VIGIL_BENCH_${_vigil_bench_id}")
    target_compile_definitions(bench_parse PRIVATE "BENCH_HAVE_${_vigil_bench_id}=1")
    list(APPEND _vigil_bench_have "${_vigil_bench_module}")
  else()
    list(APPEND _vigil_bench_missing "${_vigil_bench_module}")
  endif()
endforeach()

# jsmn is a single header (Debian: libjsmn-dev, /usr/include/jsmn.h).
find_path(VIGIL_BENCH_JSMN_INCLUDE_DIR NAMES jsmn.h)
if(VIGIL_BENCH_JSMN_INCLUDE_DIR)
  # Implicit directories such as /usr/include are dropped by CMake itself.
  target_include_directories(bench_parse SYSTEM PRIVATE "${VIGIL_BENCH_JSMN_INCLUDE_DIR}")
  target_compile_definitions(bench_parse PRIVATE BENCH_HAVE_JSMN=1)
  list(APPEND _vigil_bench_have jsmn)
else()
  list(APPEND _vigil_bench_missing jsmn)
endif()

# simdjson needs a C++17 compiler for the shim; without one (or without the
# package) bench_parse is built without that candidate.
set(_vigil_bench_simdjson OFF)
if(VIGIL_BENCH_SIMDJSON)
  include(CheckLanguage)
  check_language(CXX)
  if(CMAKE_CXX_COMPILER)
    enable_language(CXX)
    find_package(simdjson CONFIG QUIET)
    if(simdjson_FOUND AND TARGET simdjson::simdjson)
      set(_vigil_bench_simdjson ON)
    endif()
  endif()
endif()
if(_vigil_bench_simdjson)
  target_sources(bench_parse PRIVATE "${CMAKE_CURRENT_LIST_DIR}/parse_simdjson.cpp")
  set_target_properties(bench_parse PROPERTIES
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF)
  target_link_libraries(bench_parse PRIVATE simdjson::simdjson)
  target_compile_definitions(bench_parse PRIVATE BENCH_HAVE_SIMDJSON=1)
  list(APPEND _vigil_bench_have "simdjson ${simdjson_VERSION}")
else()
  list(APPEND _vigil_bench_missing simdjson)
endif()

if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(bench_parse PRIVATE -Wall -Wextra)
  if(VIGIL_BENCH_WERROR)
    target_compile_options(bench_parse PRIVATE -Werror)
  endif()
endif()

list(JOIN _vigil_bench_have ", " _vigil_bench_have)
list(JOIN _vigil_bench_missing ", " _vigil_bench_missing)
message(STATUS "bench_parse candidates: ${_vigil_bench_have}")
if(_vigil_bench_missing)
  message(STATUS "bench_parse left out (not found or disabled): ${_vigil_bench_missing}")
endif()
unset(_vigil_bench_have)
unset(_vigil_bench_missing)
unset(_vigil_bench_simdjson)
unset(_vigil_bench_pair)
unset(_vigil_bench_id)
unset(_vigil_bench_module)
