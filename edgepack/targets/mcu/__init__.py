"""Cortex-M target: C kernel library (kernels/), lowering, static memory planner and C code generator.

`codegen.generate(graph, source_sha256, cpu)` writes model.c/model.h; `memory_plan.plan(graph)` sizes
the arena; `kernel_lib` lists the kernel sources a generated model needs.
"""
