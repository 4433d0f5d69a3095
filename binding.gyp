{
  "targets": [
    {
      "target_name": "tcpao",
      "sources": [
        "native/addon.cc",
        "native/ao_connect.cc",
        "native/args.cc",
        "native/bindings.cc",
        "native/js_errors.cc",
        "native/relay.cc",
        "native/relay_bindings.cc",
        "native/tcp_ao.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "cflags": ["-Wall", "-Wextra", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "cflags_cc": ["-std=c++17"],
      # SWALLOW_UNTHROWABLE: when an env is terminating (a worker being stopped),
      # node-addon-api cannot throw a JS error and would otherwise rethrow a C++
      # exception out of the callback, which aborts the process.
      "defines": ["NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/tcp_ao.cc", "native/relay.cc", "native/relay_bindings.cc"] }]
      ]
    }
  ]
}
