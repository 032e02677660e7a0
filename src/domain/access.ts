// Roles and least privilege (最小权限, R51). Every caller acts for exactly one merchant.
import { bilingual, Fault, faults } from './faults.js';

export const roles = ['owner', 'clerk', 'auditor', 'operator'] as const;
export type Role = (typeof roles)[number];

export type Action =
  | 'invoice.issue'
  | 'invoice.read'
  | 'invoice.void'
  | 'saved.read'
  | 'saved.write'
  | 'merchant.read'
  | 'users.manage'
  | 'apikeys.manage'
  | 'ops.read'
  | 'delivery.manage'; // printers, webhook endpoints, delivery settings

const grants: Record<Role, readonly Action[]> = {
  owner: ['invoice.issue', 'invoice.read', 'invoice.void', 'saved.read', 'saved.write', 'merchant.read', 'users.manage', 'apikeys.manage', 'ops.read', 'delivery.manage'],
  clerk: ['invoice.issue', 'invoice.read', 'invoice.void', 'saved.read', 'saved.write', 'merchant.read'],
  auditor: ['invoice.read', 'saved.read', 'merchant.read', 'ops.read'],
  operator: ['merchant.read', 'ops.read'],
};

export interface Caller {
  merchantId: string;
  role: Role;
  /** Who acts, as written into the audit log and the invoice's issuer field. */
  actor: string;
}

export function can(role: Role, action: Action): boolean {
  return grants[role].includes(action);
}

export function authorize(caller: Caller, action: Action): void {
  if (!can(caller.role, action)) throw new Fault(faults.PERMISSION_DENIED, { role: caller.role, action });
}

/** What a role may be, for a refusal of one that is not. */
export const ROLE_CHOICES = bilingual('应为 owner（店主）、clerk（开票员）、auditor（审计员）或 operator（运维员）', 'one of owner, clerk, auditor, operator');

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}
