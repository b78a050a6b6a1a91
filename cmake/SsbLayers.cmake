# ssb_layer(): one static library per layer of the bridge, with the layering
# enforced by the compiler's include path.
#
# Every header lives under include/ssb/<layer>/. A layer is not given
# include/ itself but a "view": a directory under the build tree holding
# symbolic links ssb/<name> -> include/ssb/<name> for the layer itself and
# for every layer below it that it may use (the LAYERS it names and,
# transitively, theirs). An #include of any other layer's header then fails
# to compile with "No such file or directory", whatever the file, so the
# rule "lower layers never include higher ones" cannot be broken by
# accident. The generated ssb/version.hpp is visible to all.
#
#   ssb_layer(NAME SOURCES src... [LAYERS lower...]
#             [PUBLIC_LIBS ...] [PRIVATE_LIBS ...]
#             [PUBLIC_SYSTEM_INCLUDES ...] [PRIVATE_SYSTEM_INCLUDES ...]
#             [PUBLIC_DEFINITIONS ...])
#
# Defines the target ssb_<NAME> and the variable SSB_VIEW_<NAME> (the view
# directory) in the caller's scope; a layer's LAYERS must be defined before
# it. Layer-to-layer links are PRIVATE: CMake still links static libraries
# in the right order, but no layer inherits another's usage requirements.

set(SSB_VIEWS_DIR ${CMAKE_BINARY_DIR}/layer-views)
set(SSB_GENERATED_INCLUDE ${CMAKE_BINARY_DIR}/generated)

function(_ssb_make_view name)
  set(view ${SSB_VIEWS_DIR}/${name})
  file(REMOVE_RECURSE ${view})
  file(MAKE_DIRECTORY ${view}/ssb)
  foreach(layer IN LISTS ARGN)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/ssb/${layer} ${view}/ssb/${layer} SYMBOLIC)
  endforeach()
endfunction()

function(ssb_layer name)
  cmake_parse_arguments(L "" ""
    "SOURCES;LAYERS;PUBLIC_LIBS;PRIVATE_LIBS;PUBLIC_SYSTEM_INCLUDES;PRIVATE_SYSTEM_INCLUDES;PUBLIC_DEFINITIONS"
    ${ARGN})
  set(visible ${name})
  foreach(dep IN LISTS L_LAYERS)
    if(NOT TARGET ssb_${dep})
      message(FATAL_ERROR "ssb_layer(${name}): layer '${dep}' is not defined yet (define lower layers first)")
    endif()
    get_property(dep_visible GLOBAL PROPERTY SSB_VISIBLE_${dep})
    list(APPEND visible ${dep_visible})
  endforeach()
  list(REMOVE_DUPLICATES visible)
  set_property(GLOBAL PROPERTY SSB_VISIBLE_${name} ${visible})
  _ssb_make_view(${name} ${visible})

  add_library(ssb_${name} STATIC ${L_SOURCES})
  target_include_directories(ssb_${name} PRIVATE ${SSB_VIEWS_DIR}/${name} ${SSB_GENERATED_INCLUDE})
  target_compile_options(ssb_${name} PRIVATE ${SSB_WARNINGS})
  foreach(dep IN LISTS L_LAYERS)
    target_link_libraries(ssb_${name} PRIVATE ssb_${dep})
    # What a lower layer's headers need (libssh's headers, nlohmann_json,
    # Asio) is needed wherever those headers are included.
    target_include_directories(ssb_${name} SYSTEM PRIVATE
      $<TARGET_PROPERTY:ssb_${dep},INTERFACE_SYSTEM_INCLUDE_DIRECTORIES>)
    target_compile_definitions(ssb_${name} PRIVATE $<TARGET_PROPERTY:ssb_${dep},INTERFACE_COMPILE_DEFINITIONS>)
  endforeach()
  if(L_PUBLIC_LIBS)
    target_link_libraries(ssb_${name} PUBLIC ${L_PUBLIC_LIBS})
  endif()
  if(L_PRIVATE_LIBS)
    target_link_libraries(ssb_${name} PRIVATE ${L_PRIVATE_LIBS})
  endif()
  if(L_PUBLIC_SYSTEM_INCLUDES)
    target_include_directories(ssb_${name} SYSTEM PUBLIC ${L_PUBLIC_SYSTEM_INCLUDES})
  endif()
  if(L_PRIVATE_SYSTEM_INCLUDES)
    target_include_directories(ssb_${name} SYSTEM PRIVATE ${L_PRIVATE_SYSTEM_INCLUDES})
  endif()
  if(L_PUBLIC_DEFINITIONS)
    target_compile_definitions(ssb_${name} PUBLIC ${L_PUBLIC_DEFINITIONS})
  endif()
  set(SSB_VIEW_${name} ${SSB_VIEWS_DIR}/${name} ${SSB_GENERATED_INCLUDE} PARENT_SCOPE)
endfunction()

# ssb_use_layers(TARGET LAYER...): for the unit tests and the fuzzers, which
# test layers from outside: the whole include/ tree, and the named layers'
# libraries. The fuzzers name only the layers they exercise, so their
# build (one of the compiles in CI, with clang) skips the SSH,
# client, daemon and app layers.
function(ssb_use_layers target)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include ${SSB_GENERATED_INCLUDE})
  foreach(layer IN LISTS ARGN)
    target_link_libraries(${target} PRIVATE ssb_${layer})
    target_include_directories(${target} SYSTEM PRIVATE
      $<TARGET_PROPERTY:ssb_${layer},INTERFACE_SYSTEM_INCLUDE_DIRECTORIES>)
  endforeach()
  get_target_property(toml_include tomlplusplus::tomlplusplus INTERFACE_INCLUDE_DIRECTORIES)
  target_include_directories(${target} SYSTEM PRIVATE ${toml_include})
  target_link_libraries(${target} PRIVATE fmt::fmt-header-only Boost::boost nlohmann_json::nlohmann_json
                        Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

# ssb_use_all_layers(TARGET): every layer (the unit tests).
set(SSB_ALL_LAYERS util config core remote protocol ssh client daemon app)
function(ssb_use_all_layers target)
  ssb_use_layers(${target} ${SSB_ALL_LAYERS})
endfunction()
