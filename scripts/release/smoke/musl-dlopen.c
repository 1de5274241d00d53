/* Loads a .node with musl's dynamic loader (built with musl-gcc): every NEEDED library and
 * relocation must resolve under musl (RTLD_NOW) and the module's entry point must be there.
 * N-API itself is not called: no musl Node is available from the registries (the binary resolves
 * napi_* from the host process only when Node registers it). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
    return 1;
  }
  if (!dlsym(lib, "napi_register_module_v1")) {
    fprintf(stderr, "no napi_register_module_v1 in %s\n", argv[1]);
    return 1;
  }
  printf("loaded under musl, napi_register_module_v1 present\n");
  return 0;
}
