/*
 * Vireo probe guest: a tiny 64-bit payload that reports the CPUID the guest sees.
 *
 * Entered by the engine in 64-bit long mode at `_start` (identity-mapped paging, flat segments,
 * RSI = physical address of the Linux zero page, exactly like a vmlinux ELF kernel). It prints
 *
 *     VIREO-PROBE BEGIN
 *     CPUID <leaf> <subleaf> <eax> <ebx> <ecx> <edx>      (all eight-digit lowercase hex)
 *     ...
 *     VIREO-PROBE END
 *
 * on COM1 and then does what the kernel command line's `vireo.probe=<letter>` asks:
 *   r (default)  reset through the i8042 controller (command 0xfe on port 0x64)
 *   p            power off through the ACPI PM1a control register (S5)
 *   t            triple fault (empty IDT, then an exception)
 *   w            wait for the ACPI power button (PM1a status bit 8), then power off
 *   e            echo serial input back until a 'q' arrives, then power off
 *   h            halt forever with interrupts off (only a forced stop ends it)
 *   q            power off at once, printing nothing (start/stop cost without guest work)
 */
        .set COM1, 0x3f8
        .set COM1_LSR, 0x3fd
        .set I8042_CMD, 0x64
        .set PM1A_STS, 0x600
        .set PM1A_EN, 0x602
        .set PM1A_CNT, 0x604
        .set S5_SLEEP, (5 << 10) | (1 << 13)
        .set PWRBTN, 1 << 8
        .set CMDLINE_PTR, 0x228

        .code64
        .section .text
        .globl _start
_start:
        cli
        lea     stack_top(%rip), %rsp
        mov     %rsi, %r15                      /* zero page, kept for the command line */
        call    probe_mode
        cmp     $'q', %al
        je      power_off
        lea     msg_begin(%rip), %rsi
        call    puts

        xor     %eax, %eax
        call    leaf_once                       /* 0: max leaf, vendor */
        mov     $1, %eax
        call    leaf_once
        mov     $7, %eax
        xor     %ecx, %ecx
        call    leaf
        mov     $7, %eax
        mov     $1, %ecx
        call    leaf
        mov     $0x1f, %r14d                    /* leaf 4: cache type */
        xor     %ebp, %ebp
        mov     $4, %eax
        call    leaf_walk
        xor     %r14d, %r14d                    /* 0xB, 0x1F: level type */
        mov     $0xff00, %ebp
        mov     $0xb, %eax
        call    leaf_walk
        mov     $0x1f, %eax
        call    leaf_walk
        mov     $0xd, %eax
        xor     %ecx, %ecx
        call    leaf
        mov     $0xd, %eax
        mov     $1, %ecx
        call    leaf
        mov     $0x80000000, %eax
        call    leaf_once
        mov     $0x80000001, %eax
        call    leaf_once
        mov     $0x80000008, %eax
        call    leaf_once
        mov     $0x8000001e, %eax
        call    leaf_once

        lea     msg_end(%rip), %rsi
        call    puts

        call    probe_mode
        cmp     $'p', %al
        je      power_off
        cmp     $'t', %al
        je      triple_fault
        cmp     $'w', %al
        je      wait_power_button
        cmp     $'e', %al
        je      echo
        cmp     $'h', %al
        je      halt_forever
reset:
        mov     $0xfe, %al
        out     %al, $I8042_CMD
        jmp     halt_forever

power_off:
        mov     $S5_SLEEP, %ax
        mov     $PM1A_CNT, %dx
        out     %ax, %dx
halt_forever:
        cli
        hlt
        jmp     halt_forever

triple_fault:
        lidt    empty_idt(%rip)
        ud2

wait_power_button:
        mov     $PWRBTN, %ax
        mov     $PM1A_EN, %dx
        out     %ax, %dx
1:      pause
        mov     $PM1A_STS, %dx
        in      %dx, %ax
        test    $PWRBTN, %ax
        jz      1b
        out     %ax, %dx                        /* write-1-to-clear the status */
        lea     msg_button(%rip), %rsi
        call    puts
        jmp     power_off

echo:
        lea     msg_echo(%rip), %rsi
        call    puts
1:      pause
        mov     $COM1_LSR, %dx
        in      %dx, %al
        test    $1, %al                         /* data ready */
        jz      1b
        mov     $COM1, %dx
        in      %dx, %al
        cmp     $'q', %al
        je      power_off
        call    putc
        jmp     1b

/* Returns in %al the letter after "vireo.probe=" on the command line, or 'r'. */
probe_mode:
        mov     CMDLINE_PTR(%r15), %esi
        test    %esi, %esi
        jz      3f
1:      cmpb    $0, (%rsi)
        je      3f
        lea     key(%rip), %rdi
        mov     %rsi, %rdx
2:      movb    (%rdi), %al
        test    %al, %al
        jz      4f                              /* whole key matched */
        cmpb    (%rdx), %al
        jne     5f
        inc     %rdi
        inc     %rdx
        jmp     2b
5:      inc     %rsi
        jmp     1b
4:      movb    (%rdx), %al
        ret
3:      mov     $'r', %al
        ret

/* One subleaf 0 of leaf %eax. */
leaf_once:
        xor     %ecx, %ecx
/* Print leaf %eax, subleaf %ecx. Preserves nothing but the stack. */
leaf:
        push    %rax
        push    %rcx
        mov     %eax, %r8d
        mov     %ecx, %r9d
        cpuid
        mov     %eax, %r10d
        mov     %ebx, %r11d
        mov     %ecx, %r12d
        mov     %edx, %r13d
        lea     msg_cpuid(%rip), %rsi
        call    puts
        mov     %r8d, %eax
        call    put_hex_sp
        mov     %r9d, %eax
        call    put_hex_sp
        mov     %r10d, %eax
        call    put_hex_sp
        mov     %r11d, %eax
        call    put_hex_sp
        mov     %r12d, %eax
        call    put_hex_sp
        mov     %r13d, %eax
        call    put_hex
        mov     $'\n', %al
        call    putc
        pop     %rcx
        pop     %rax
        ret

/* Subleaves of leaf %eax from 0 until (EAX & %r14d) | (ECX & %ebp) is zero, at most 8:
   leaf 4 ends at cache type 0, leaves 0xB/0x1F at level type 0. */
leaf_walk:
        xor     %ecx, %ecx
1:      call    leaf                            /* keeps %eax/%ecx; outputs in r10d..r13d */
        and     %r14d, %r10d
        and     %ebp, %r12d
        or      %r10d, %r12d
        jz      2f
        inc     %ecx
        cmp     $8, %ecx
        jb      1b
2:      ret

put_hex_sp:
        call    put_hex
        mov     $' ', %al
        jmp     putc

/* Print %eax as eight lowercase hex digits. */
put_hex:
        mov     %eax, %ebx
        mov     $8, %ecx
1:      rol     $4, %ebx
        mov     %ebx, %eax
        and     $0xf, %eax
        lea     hex_digits(%rip), %rdi
        movb    (%rdi,%rax), %al
        push    %rcx
        call    putc
        pop     %rcx
        dec     %ecx
        jnz     1b
        ret

/* Print the NUL-terminated string at %rsi. */
puts:
1:      movb    (%rsi), %al
        test    %al, %al
        jz      2f
        call    putc
        inc     %rsi
        jmp     1b
2:      ret

/* Write %al to COM1 once the transmitter holding register is empty. */
putc:
        push    %rdx
        push    %rax
        mov     $COM1_LSR, %dx
1:      in      %dx, %al
        test    $0x20, %al
        jz      1b
        pop     %rax
        mov     $COM1, %dx
        out     %al, %dx
        pop     %rdx
        ret

        .section .rodata
msg_begin:  .asciz "VIREO-PROBE BEGIN\n"
msg_end:    .asciz "VIREO-PROBE END\n"
msg_cpuid:  .asciz "CPUID "
msg_button: .asciz "VIREO-PROBE POWER-BUTTON\n"
msg_echo:   .asciz "VIREO-PROBE ECHO\n"
key:        .asciz "vireo.probe="
hex_digits: .ascii "0123456789abcdef"
        .balign 8
empty_idt:  .word 0
            .quad 0

        .section .bss
        .balign 16
stack:      .skip 4096
stack_top:
